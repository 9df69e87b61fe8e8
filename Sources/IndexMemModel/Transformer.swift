// IndexMem — model. Apache-2.0.
//
// The one forward pass, in the order llama2.c's run.c reads: embed -> per layer (rmsnorm ->
// q, k, v -> RoPE -> cache.append -> cache.attend -> wo -> residual -> rmsnorm -> FFN ->
// residual) -> norm -> logits. It runs a chunk of tokens at once (prefill) or one (decode);
// architecture differences are fields of `ModelConfiguration`.

import IndexMemCache
import IndexMemKernels

// MARK: - Forward pass

/// Which positions of a chunk need logits.
public enum LogitsRequest: Sendable {
    case none, last, all
}

/// Runs the model. Holds scratch buffers for chunks of up to `maxChunk` tokens; one
/// `Transformer` serves one sequence at a time (it is not thread-safe).
public final class Transformer: @unchecked Sendable {
    public let weights: ModelWeights
    public let configuration: ModelConfiguration
    public let maxChunk: Int
    public let pool: ThreadPool
    private let rope: RoPE

    // Scratch, each sized for maxChunk tokens.
    private let x: UnsafeMutablePointer<Float>        // (chunk, embedding) residual stream
    private let xb: UnsafeMutablePointer<Float>       // (chunk, max(embedding, qdim)) normed input / attention out
    private let q: UnsafeMutablePointer<Float>        // (chunk, queryHeads * headDim)
    private let k: UnsafeMutablePointer<Float>        // (chunk, kvHeads * headDim)
    private let v: UnsafeMutablePointer<Float>        // (chunk, kvHeads * headDim)
    private let hb: UnsafeMutablePointer<Float>       // (chunk, ffn) gate
    private let hb2: UnsafeMutablePointer<Float>      // (chunk, ffn) up
    private let act: UnsafeMutableRawPointer          // (chunk, quantized row of max(embedding, ffn, qdim))
    private let cosSin: UnsafeMutablePointer<Float>   // (headDim)
    private let positionsBuffer: UnsafeMutablePointer<Int32>  // (chunk)

    public init(weights: ModelWeights, maxChunk: Int = 256, pool: ThreadPool) {
        self.weights = weights
        self.configuration = weights.configuration
        self.maxChunk = maxChunk
        self.pool = pool
        let c = weights.configuration
        rope = RoPE(style: c.ropeStyle, dimensions: c.ropeDimensions, base: c.ropeBase, freqScale: c.ropeFreqScale)
        let wide = max(c.embeddingDimension, c.queryDimension)
        x = .allocate(capacity: maxChunk * c.embeddingDimension)
        xb = .allocate(capacity: maxChunk * wide)
        q = .allocate(capacity: maxChunk * c.queryDimension)
        k = .allocate(capacity: maxChunk * c.kvDimension)
        v = .allocate(capacity: maxChunk * c.kvDimension)
        hb = .allocate(capacity: maxChunk * c.feedForwardDimension)
        hb2 = .allocate(capacity: maxChunk * c.feedForwardDimension)
        let widest = max(wide, c.feedForwardDimension)
        // Q8_1 (36 bytes per 32) is the widest activation format per element besides f32.
        act = .allocate(byteCount: maxChunk * max(widest * 4, widest / 32 * 36 + 292), alignment: 64)
        cosSin = .allocate(capacity: c.headDimension)
        positionsBuffer = .allocate(capacity: maxChunk)
    }

    deinit {
        x.deallocate(); xb.deallocate(); q.deallocate(); k.deallocate(); v.deallocate()
        hb.deallocate(); hb2.deallocate(); act.deallocate(); cosSin.deallocate(); positionsBuffer.deallocate()
    }

    /// Makes the per-layer caches for a full (unbounded up to `capacity`) cache.
    public func makeFullCaches(capacity: Int) -> [any LayerCache] {
        let c = configuration
        let shape = AttentionShape(queryHeads: c.queryHeads, kvHeads: c.kvHeads, headDimension: c.headDimension,
                                   scale: 1 / Float(c.headDimension).squareRoot(), slidingWindow: c.slidingWindow)
        return (0..<c.layerCount).map { _ in FullLayerCache(shape: shape, capacity: capacity) }
    }

    /// Runs `tokens` through the model at consecutive positions from `startPosition`,
    /// appending to `caches`, in chunks of at most `maxChunk`.
    /// - Parameters:
    ///   - logits: where to write logits, (rows, vocab) floats: one row for `.last`,
    ///     `tokens.count` rows for `.all`, none for `.none`.
    ///   - progress: called after each chunk with (tokens done, tokens total).
    public func forward(tokens: [Int], startPosition: Int, caches: [any LayerCache], logits request: LogitsRequest,
                        into logits: UnsafeMutablePointer<Float>?, progress: ((Int, Int) -> Void)? = nil) throws {
        let vocab = configuration.vocabularySize
        for t in tokens where t < 0 || t >= vocab { throw ModelError.invalidToken(t, vocabularySize: vocab) }
        let end = startPosition + tokens.count
        guard end <= configuration.contextLength else {
            throw ModelError.contextExceeded(requested: end, limit: configuration.contextLength)
        }
        var done = 0
        while done < tokens.count {
            let n = min(maxChunk, tokens.count - done)
            let isLast = done + n == tokens.count
            let chunkRequest: LogitsRequest
            var out: UnsafeMutablePointer<Float>? = nil
            switch request {
            case .none: chunkRequest = .none
            case .last: chunkRequest = isLast ? .last : .none; out = logits
            case .all: chunkRequest = .all; out = logits.map { $0 + done * vocab }
            }
            tokens.withUnsafeBufferPointer { buf in
                forwardChunk(tokens: UnsafeBufferPointer(rebasing: buf[done..<(done + n)]),
                             startPosition: startPosition + done, caches: caches, request: chunkRequest, logits: out)
            }
            done += n
            progress?(done, tokens.count)
        }
    }

    private func forwardChunk(tokens: UnsafeBufferPointer<Int>, startPosition: Int, caches: [any LayerCache],
                              request: LogitsRequest, logits: UnsafeMutablePointer<Float>?) {
        let c = configuration
        let n = tokens.count
        let d = c.embeddingDimension, qd = c.queryDimension, kvd = c.kvDimension, ffn = c.feedForwardDimension
        let hd = c.headDimension
        for t in 0..<n { positionsBuffer[t] = Int32(startPosition + t) }

        // MARK: Embedding
        for t in 0..<n { weights.tokenEmbedding.dequantizeRow(tokens[t], into: x + t * d) }

        for (l, layer) in weights.layers.enumerated() {
            // MARK: Attention
            for t in 0..<n { VectorMath.rmsNorm(x + t * d, weight: layer.attentionNorm, eps: c.rmsNormEpsilon, out: xb + t * d, count: d) }
            project(xb, stride: d, tokens: n, through: [(layer.query, q, qd), (layer.key, k, kvd), (layer.value, v, kvd)])
            for t in 0..<n {
                rope.apply(q + t * qd, heads: c.queryHeads, headDimension: hd, position: positionsBuffer[t], cosSin: cosSin)
                rope.apply(k + t * kvd, heads: c.kvHeads, headDimension: hd, position: positionsBuffer[t], cosSin: cosSin)
            }
            let cache = caches[l]
            cache.append(keys: k, values: v, positions: positionsBuffer, tokens: n)
            cache.attend(queries: q, positions: positionsBuffer, tokens: n, output: xb, pool: pool)
            project(xb, stride: qd, tokens: n, through: [(layer.output, q, d)])
            for t in 0..<n { VectorMath.add(q + t * d, into: x + t * d, count: d) }

            // MARK: Feed-forward (SwiGLU)
            for t in 0..<n { VectorMath.rmsNorm(x + t * d, weight: layer.feedForwardNorm, eps: c.rmsNormEpsilon, out: xb + t * d, count: d) }
            project(xb, stride: d, tokens: n, through: [(layer.gate, hb, ffn), (layer.up, hb2, ffn)])
            for t in 0..<n { VectorMath.swiglu(hb + t * ffn, hb2 + t * ffn, count: ffn) }
            project(hb, stride: ffn, tokens: n, through: [(layer.down, q, d)])
            for t in 0..<n { VectorMath.add(q + t * d, into: x + t * d, count: d) }
        }

        // MARK: Output
        guard let logits else { return }
        let first: Int
        switch request {
        case .none: return
        case .last: first = n - 1
        case .all: first = 0
        }
        for t in first..<n {
            VectorMath.rmsNorm(x + t * d, weight: weights.outputNorm, eps: c.rmsNormEpsilon, out: xb + (t - first) * d, count: d)
        }
        project(xb, stride: d, tokens: n - first, through: [(weights.output, logits, c.vocabularySize)])
    }

    /// Quantizes `tokens` rows of `input` once per activation format and multiplies them by
    /// each matrix, writing (tokens, outStride) floats.
    private func project(_ input: UnsafeMutablePointer<Float>, stride: Int, tokens: Int,
                         through products: [(WeightMatrix, UnsafeMutablePointer<Float>, Int)]) {
        var prepared: ActivationType? = nil
        for (w, out, outStride) in products {
            let type = w.type.activationType
            if prepared != type {
                MatMul.prepareActivations(input, tokens: tokens, columns: w.columns, inStride: stride, type: type, into: act, pool: pool)
                prepared = type
            }
            MatMul.multiply(w, activations: act, tokens: tokens, out: out, outStride: outStride, pool: pool)
        }
    }
}
