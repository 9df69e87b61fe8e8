// IndexMem — model. Apache-2.0.

import IndexMemGGUF
import IndexMemKernels

// MARK: - Weights

/// One transformer block's weights. Matrices stay in the file's quantized storage
/// (memory-mapped); norm vectors are copied out as floats.
public struct LayerWeights: @unchecked Sendable {
    public let attentionNorm: [Float]         // (embedding)
    public let query: WeightMatrix            // (queryHeads * headDim, embedding)
    public let key: WeightMatrix              // (kvHeads * headDim, embedding)
    public let value: WeightMatrix            // (kvHeads * headDim, embedding)
    public let output: WeightMatrix           // (embedding, queryHeads * headDim)
    public let feedForwardNorm: [Float]       // (embedding)
    public let gate: WeightMatrix             // (ffn, embedding)
    public let up: WeightMatrix               // (ffn, embedding)
    public let down: WeightMatrix             // (embedding, ffn)
}

/// All weights of a model, bound to the memory-mapped GGUF file (kept alive here).
public final class ModelWeights: @unchecked Sendable {
    public let file: GGUFFile
    public let configuration: ModelConfiguration
    public let tokenEmbedding: WeightMatrix   // (vocab, embedding)
    public let outputNorm: [Float]            // (embedding)
    public let output: WeightMatrix           // (vocab, embedding); the embedding when tied
    public let layers: [LayerWeights]

    public init(file: GGUFFile, configuration c: ModelConfiguration) throws {
        self.file = file
        self.configuration = c
        func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
            guard let t = file.tensor(name) else { throw GGUFError.missingTensor(name) }
            guard t.dimensions.count <= 2, t.rowLength == columns, t.rowCount == rows else {
                throw ModelError.tensorShape(name: name, expected: [columns, rows], found: t.dimensions)
            }
            guard let type = WeightType(rawValue: t.type.rawValue) else {
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
        let d = c.embeddingDimension
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, columns: d)
        outputNorm = try vector("output_norm.weight", count: d)
        output = file.tensor("output.weight") != nil ? try matrix("output.weight", rows: c.vocabularySize, columns: d) : tokenEmbedding
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", count: d),
                query: try matrix(p + "attn_q.weight", rows: c.queryDimension, columns: d),
                key: try matrix(p + "attn_k.weight", rows: c.kvDimension, columns: d),
                value: try matrix(p + "attn_v.weight", rows: c.kvDimension, columns: d),
                output: try matrix(p + "attn_output.weight", rows: d, columns: c.queryDimension),
                feedForwardNorm: try vector(p + "ffn_norm.weight", count: d),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForwardDimension, columns: d),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForwardDimension, columns: d),
                down: try matrix(p + "ffn_down.weight", rows: d, columns: c.feedForwardDimension)))
        }
        self.layers = layers
    }
}
