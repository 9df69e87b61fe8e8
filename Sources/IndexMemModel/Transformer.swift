// IndexMem — model. Apache-2.0.
//
// The one forward pass, in the order llama2.c's run.c reads: embed -> per layer (rmsnorm ->
// q, k, v -> RoPE -> cache.append -> cache.attend -> wo -> residual -> rmsnorm -> FFN ->
// residual) -> norm -> logits. It runs a chunk of tokens at once (prefill) or one (decode);
// architecture differences are fields of `ModelConfiguration`.

import Foundation
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
    /// RoPE of global layers and, when they differ, of sliding-window layers.
    private let rope: RoPE
    private let slidingRope: RoPE
    /// Sees intermediate values of each chunk: (layer, name, rows x columns floats). Names
    /// follow llama.cpp's graph (`attn_norm`, `kqv_out`, `l_out`, `result_norm`), so the two
    /// engines can be compared tensor by tensor; nil (the default) costs nothing.
    public var observer: ((_ layer: Int, _ name: String, _ values: UnsafePointer<Float>, _ rows: Int, _ columns: Int) -> Void)?

    // Scratch, each sized for maxChunk tokens.
    private let x: UnsafeMutablePointer<Float>        // (chunk, embedding) residual stream
    private let xb: UnsafeMutablePointer<Float>       // (chunk, max(embedding, qdim)) normed input / attention out
    private let yb: UnsafeMutablePointer<Float>       // (chunk, embedding) attention / feed-forward block output
    private let q: UnsafeMutablePointer<Float>        // (chunk, queryHeads * headDim)
    private let k: UnsafeMutablePointer<Float>        // (chunk, kvHeads * headDim)
    private let v: UnsafeMutablePointer<Float>        // (chunk, kvHeads * headDim)
    private let hb: UnsafeMutablePointer<Float>       // (chunk, ffn) gate
    private let hb2: UnsafeMutablePointer<Float>      // (chunk, ffn) up
    private let act: UnsafeMutableRawPointer          // (chunk, quantized row of max(embedding, ffn, qdim))
    private let cosSin: UnsafeMutablePointer<Float>   // (headDim)
    private var kPlain: UnsafeMutablePointer<Float>?  // (chunk, kvHeads * headDim) keys before RoPE, when a policy asks
    private var hidden: UnsafeMutablePointer<Float>?  // (chunk, embedding) normalised layer input, when a policy asks
    private let positionsBuffer: UnsafeMutablePointer<Int32>  // (chunk)

    public init(weights: ModelWeights, maxChunk: Int = 256, pool: ThreadPool) {
        self.weights = weights
        self.configuration = weights.configuration
        self.maxChunk = maxChunk
        self.pool = pool
        let c = weights.configuration
        rope = RoPE(style: c.ropeStyle, dimensions: c.ropeDimensions, base: c.ropeBase, freqScale: c.ropeFreqScale,
                    frequencyFactors: weights.ropeFrequencyFactors)
        slidingRope = RoPE(style: c.ropeStyle, dimensions: c.ropeDimensions, base: c.slidingRopeBase ?? c.ropeBase,
                           freqScale: c.slidingRopeFreqScale ?? c.ropeFreqScale, frequencyFactors: weights.ropeFrequencyFactors)
        let wide = max(c.embeddingDimension, c.queryDimension)
        x = .allocate(capacity: maxChunk * c.embeddingDimension)
        xb = .allocate(capacity: maxChunk * wide)
        yb = .allocate(capacity: maxChunk * c.embeddingDimension)
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
        x.deallocate(); xb.deallocate(); yb.deallocate(); q.deallocate(); k.deallocate(); v.deallocate()
        hb.deallocate(); hb2.deallocate(); act.deallocate(); cosSin.deallocate(); positionsBuffer.deallocate()
        kPlain?.deallocate(); hidden?.deallocate()
    }

    /// Makes the per-layer caches for a full cache (every entry kept, up to `capacity`).
    /// Sliding-window layers keep every entry too (their attention masks by position).
    public func makeFullCaches(capacity: Int) -> [any LayerCache] {
        (0..<configuration.layerCount).map { FullLayerCache(shape: configuration.attentionShape(layer: $0), capacity: capacity) }
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
        let hd = c.headDimension, eps = c.rmsNormEpsilon
        for t in 0..<n { positionsBuffer[t] = Int32(startPosition + t) }
        let signals = caches.reduce(PolicySignals()) { $0.union($1.signals) }
        if signals.contains(.unrotatedKeys) && kPlain == nil { kPlain = .allocate(capacity: maxChunk * kvd) }
        if signals.contains(.hiddenStates) && hidden == nil { hidden = .allocate(capacity: maxChunk * d) }
        // Rows that need logits: the last layer's feed-forward runs on those only (llama.cpp's
        // `inp_out_ids`), after attention has seen every row.
        let outputRows: Range<Int>
        switch request {
        case .none: outputRows = n..<n
        case .last: outputRows = (n - 1)..<n
        case .all: outputRows = 0..<n
        }

        // MARK: Embedding
        for t in 0..<n { weights.tokenEmbedding.dequantizeRow(tokens[t], into: x + t * d) }
        if let s = c.embeddingScale { VectorMath.scale(x, by: s, count: n * d) }
        observer?(-1, "inp_scaled", x, n, d)

        var rows = n  // rows of x still computed (fewer in the last layer)
        for (l, layer) in weights.layers.enumerated() {
            // MARK: Attention
            for t in 0..<n { VectorMath.rmsNorm(x + t * d, weight: layer.attentionNorm, eps: eps, out: xb + t * d, count: d) }
            observer?(l, "attn_norm", xb, n, d)
            project(xb, stride: d, tokens: n, layer.query, q, qd, layer.key, k, kvd, layer.value, v, kvd)
            if let b = layer.queryBias { for t in 0..<n { VectorMath.add(b, into: q + t * qd, count: qd) } }
            if let b = layer.keyBias { for t in 0..<n { VectorMath.add(b, into: k + t * kvd, count: kvd) } }
            if let b = layer.valueBias { for t in 0..<n { VectorMath.add(b, into: v + t * kvd, count: kvd) } }
            if let qn = layer.queryNorm, let kn = layer.keyNorm {
                for h in 0..<(n * c.queryHeads) { VectorMath.rmsNorm(q + h * hd, weight: qn, eps: eps, out: q + h * hd, count: hd) }
                for h in 0..<(n * c.kvHeads) { VectorMath.rmsNorm(k + h * hd, weight: kn, eps: eps, out: k + h * hd, count: hd) }
                observer?(l, "Qcur_normed", q, n, qd)
                observer?(l, "Kcur_normed", k, n, kvd)
            }
            observer?(l, "Kcur_unrotated", k, n, kvd)
            let cache = caches[l]
            let wants = cache.signals
            if wants.contains(.unrotatedKeys), let kPlain { kPlain.update(from: k, count: n * kvd) }
            if wants.contains(.hiddenStates), let hidden { hidden.update(from: xb, count: n * d) }
            let layerRope = c.slidingWindow(layer: l) == nil ? rope : slidingRope
            for t in 0..<n {
                layerRope.apply(q + t * qd, heads: c.queryHeads, headDimension: hd, position: positionsBuffer[t], cosSin: cosSin)
                layerRope.apply(k + t * kvd, heads: c.kvHeads, headDimension: hd, position: positionsBuffer[t], cosSin: cosSin)
            }
            observer?(l, "Qcur", q, n, qd)
            observer?(l, "Vcur", v, n, kvd)
            observer?(l, "Kcur", k, n, kvd)
            if let s = c.queryScale { VectorMath.scale(q, by: s, count: n * qd) }
            cache.append(AppendBatch(
                keys: k, values: v, positions: positionsBuffer, tokens: n,
                unrotatedKeys: wants.contains(.unrotatedKeys) ? UnsafePointer(kPlain) : nil,
                hiddenStates: wants.contains(.hiddenStates) ? UnsafePointer(hidden) : nil, hiddenDimension: d))
            cache.attend(queries: q, positions: positionsBuffer, tokens: n, output: xb, pool: pool)
            observer?(l, "kqv_out", xb, n, qd)
            project(xb, stride: qd, tokens: n, layer.output, yb, d)
            if let b = layer.outputBias { for t in 0..<n { VectorMath.add(b, into: yb + t * d, count: d) } }
            if l == c.layerCount - 1 && outputRows.count < n {
                // Keep only the rows that need logits (moved to the front).
                rows = outputRows.count
                if rows > 0 {
                    (yb).update(from: yb + outputRows.lowerBound * d, count: rows * d)
                    x.update(from: x + outputRows.lowerBound * d, count: rows * d)
                }
            }
            if rows == 0 { break }
            if let w = layer.postAttentionNorm {
                for t in 0..<rows { VectorMath.rmsNorm(yb + t * d, weight: w, eps: eps, out: yb + t * d, count: d) }
                observer?(l, "attn_post_norm", yb, rows, d)
            }
            for t in 0..<rows { VectorMath.add(yb + t * d, into: x + t * d, count: d) }

            // MARK: Feed-forward (gated: SwiGLU or GeGLU)
            observer?(l, "ffn_inp", x, rows, d)
            for t in 0..<rows { VectorMath.rmsNorm(x + t * d, weight: layer.feedForwardNorm, eps: eps, out: xb + t * d, count: d) }
            observer?(l, "ffn_norm", xb, rows, d)
            project(xb, stride: d, tokens: rows, layer.gate, hb, ffn, layer.up, hb2, ffn)
            observer?(l, "ffn_gate", hb, rows, ffn)
            observer?(l, "ffn_up", hb2, rows, ffn)
            switch c.feedForwardActivation {
            case .silu:
                for t in 0..<rows { VectorMath.swiglu(hb + t * ffn, hb2 + t * ffn, count: ffn) }
                observer?(l, "ffn_swiglu", hb, rows, ffn)
            case .gelu:
                for t in 0..<rows { VectorMath.geglu(hb + t * ffn, hb2 + t * ffn, count: ffn) }
                observer?(l, "ffn_geglu", hb, rows, ffn)
            }
            project(hb, stride: ffn, tokens: rows, layer.down, yb, d)
            observer?(l, "ffn_out", yb, rows, d)
            if let w = layer.postFeedForwardNorm {
                for t in 0..<rows { VectorMath.rmsNorm(yb + t * d, weight: w, eps: eps, out: yb + t * d, count: d) }
                observer?(l, "ffn_post_norm", yb, rows, d)
            }
            for t in 0..<rows { VectorMath.add(yb + t * d, into: x + t * d, count: d) }
            observer?(l, "l_out", x, rows, d)
        }

        // MARK: Output
        guard let logits, rows > 0 else { return }
        for t in 0..<rows {
            VectorMath.rmsNorm(x + t * d, weight: weights.outputNorm, eps: eps, out: xb + t * d, count: d)
        }
        observer?(-1, "result_norm", xb, rows, d)
        let vocab = c.vocabularySize
        project(xb, stride: d, tokens: rows, weights.output, logits, vocab)
        if let cap = c.finalLogitSoftcap {
            let inverse = 1 / cap
            for i in 0..<(rows * vocab) { logits[i] = tanhf(logits[i] * inverse) * cap }
        }
    }

    /// Quantizes `tokens` rows of `input` once per activation format and multiplies them by
    /// up to three matrices (all reading the same input), writing (tokens, outStride) floats.
    private func project(_ input: UnsafeMutablePointer<Float>, stride: Int, tokens: Int,
                         _ w0: WeightMatrix, _ out0: UnsafeMutablePointer<Float>, _ stride0: Int,
                         _ w1: WeightMatrix? = nil, _ out1: UnsafeMutablePointer<Float>? = nil, _ stride1: Int = 0,
                         _ w2: WeightMatrix? = nil, _ out2: UnsafeMutablePointer<Float>? = nil, _ stride2: Int = 0) {
        var prepared: (type: ActivationType, grouped: Int)? = nil
        func run(_ w: WeightMatrix, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
            let type = w.type.activationType
            let grouped = w.groupedActivationRows(tokens: tokens)
            if prepared?.type != type || prepared?.grouped != grouped {
                MatMul.prepareActivations(input, tokens: tokens, columns: w.columns, inStride: stride, type: type, into: act, pool: pool,
                                          positiveTieRows: grouped)
                prepared = (type, grouped)
            }
            MatMul.multiply(w, activations: act, tokens: tokens, out: out, outStride: outStride, pool: pool)
        }
        run(w0, out0, stride0)
        if let w1, let out1 { run(w1, out1, stride1) }
        if let w2, let out2 { run(w2, out2, stride2) }
    }
}

// MARK: - Attention geometry per layer

extension ModelConfiguration {
    /// The attention shape of `layer`: heads, the score scale and its sliding window.
    public func attentionShape(layer: Int) -> AttentionShape {
        AttentionShape(queryHeads: queryHeads, kvHeads: kvHeads, headDimension: headDimension,
                       scale: attentionScale, slidingWindow: slidingWindow(layer: layer))
    }
}
