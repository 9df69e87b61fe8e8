// IndexMem — model. Apache-2.0.

import IndexMemGGUF
import IndexMemKernels

// MARK: - Weights

/// One transformer block's weights. Matrices stay in the file's quantized storage
/// (memory-mapped); norm vectors and biases are copied out as floats. Optional tensors are
/// nil when the architecture has none.
public struct LayerWeights: @unchecked Sendable {
    public let attentionNorm: [Float]         // (embedding)
    public let query: WeightMatrix            // (queryHeads * headDim, embedding)
    public let key: WeightMatrix              // (kvHeads * headDim, embedding)
    public let value: WeightMatrix            // (kvHeads * headDim, embedding)
    public let queryBias: [Float]?            // (queryHeads * headDim)  qwen2
    public let keyBias: [Float]?              // (kvHeads * headDim)
    public let valueBias: [Float]?            // (kvHeads * headDim)
    public let queryNorm: [Float]?            // (headDim)  qwen3, gemma3
    public let keyNorm: [Float]?              // (headDim)
    public let output: WeightMatrix           // (embedding, queryHeads * headDim)
    public let outputBias: [Float]?           // (embedding)
    public let postAttentionNorm: [Float]?    // (embedding)  gemma
    public let feedForwardNorm: [Float]       // (embedding)
    public let gate: WeightMatrix             // (ffn, embedding)
    public let up: WeightMatrix               // (ffn, embedding)
    public let down: WeightMatrix             // (embedding, ffn)
    public let postFeedForwardNorm: [Float]?  // (embedding)  gemma
}

/// All weights of a model, bound to the memory-mapped GGUF file (kept alive here).
public final class ModelWeights: @unchecked Sendable {
    public let file: GGUFFile
    public let configuration: ModelConfiguration
    public let tokenEmbedding: WeightMatrix   // (vocab, embedding)
    public let outputNorm: [Float]            // (embedding)
    public let output: WeightMatrix           // (vocab, embedding); the embedding when tied
    /// Whether the output layer reuses the token embedding.
    public let tiedOutput: Bool
    /// Llama 3 RoPE frequency divisors (`rope_freqs.weight`, ropeDimensions / 2), if present.
    public let ropeFrequencyFactors: [Float]?
    public let layers: [LayerWeights]

    public init(file: GGUFFile, configuration c: ModelConfiguration) throws {
        self.file = file
        self.configuration = c
        func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
            guard let t = file.tensor(name) else { throw GGUFError.missingTensor(name) }
            guard t.dimensions.count <= 2, t.rowLength == columns, t.rowCount == rows else {
                throw ModelError.tensorShape(name: name, expected: [columns, rows], found: t.dimensions)
            }
            guard let type = WeightType(rawValue: t.type.rawValue), columns % type.blockElements == 0 else {
                throw ModelError.unsupportedTensorType(name: name, type: t.type.description)
            }
            return WeightMatrix(data: file.data(of: t), type: type, rows: rows, columns: columns)
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            guard let t = file.tensor(name) else { throw GGUFError.missingTensor(name) }
            guard t.elementCount == count else { throw ModelError.tensorShape(name: name, expected: [count], found: t.dimensions) }
            guard let type = WeightType(rawValue: t.type.rawValue), type == .f32 || type == .f16 || type == .bf16 else {
                throw ModelError.unsupportedTensorType(name: name, type: t.type.description)
            }
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { WeightKernels.of(type).dequantize(file.data(of: t), $0.baseAddress!, count) }
            return out
        }
        func optionalVector(_ name: String, count: Int, required: Bool = false) throws -> [Float]? {
            if file.tensor(name) == nil && !required { return nil }
            return try vector(name, count: count)
        }
        let d = c.embeddingDimension, hd = c.headDimension
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, columns: d)
        outputNorm = try vector("output_norm.weight", count: d)
        tiedOutput = file.tensor("output.weight") == nil
        // llama.cpp keeps a tied output layer out of its repack buffer (it is the embedding).
        output = tiedOutput ? tokenEmbedding.notRepackable() : try matrix("output.weight", rows: c.vocabularySize, columns: d)
        ropeFrequencyFactors = try optionalVector("rope_freqs.weight", count: c.ropeDimensions / 2)
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", count: d),
                query: try matrix(p + "attn_q.weight", rows: c.queryDimension, columns: d),
                key: try matrix(p + "attn_k.weight", rows: c.kvDimension, columns: d),
                value: try matrix(p + "attn_v.weight", rows: c.kvDimension, columns: d),
                queryBias: try optionalVector(p + "attn_q.bias", count: c.queryDimension, required: c.qkvBias),
                keyBias: try optionalVector(p + "attn_k.bias", count: c.kvDimension, required: c.qkvBias),
                valueBias: try optionalVector(p + "attn_v.bias", count: c.kvDimension, required: c.qkvBias),
                queryNorm: try optionalVector(p + "attn_q_norm.weight", count: hd, required: c.queryKeyNorm),
                keyNorm: try optionalVector(p + "attn_k_norm.weight", count: hd, required: c.queryKeyNorm),
                output: try matrix(p + "attn_output.weight", rows: d, columns: c.queryDimension),
                outputBias: try optionalVector(p + "attn_output.bias", count: d),
                postAttentionNorm: c.postNorms ? try vector(p + "post_attention_norm.weight", count: d) : nil,
                feedForwardNorm: try vector(p + "ffn_norm.weight", count: d),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForwardDimension, columns: d),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForwardDimension, columns: d),
                down: try matrix(p + "ffn_down.weight", rows: d, columns: c.feedForwardDimension),
                postFeedForwardNorm: c.postNorms ? try vector(p + "post_ffw_norm.weight", count: d) : nil))
        }
        self.layers = layers
    }
}
