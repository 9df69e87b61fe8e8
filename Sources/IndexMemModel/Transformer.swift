// IndexMem — model. Apache-2.0.
//
// The one forward pass, in the order llama2.c's run.c reads: embed -> per layer (rmsnorm ->
// q, k, v -> RoPE -> cache.append -> cache.attend -> wo -> residual -> rmsnorm -> FFN ->
// residual) -> norm -> logits. It runs a chunk of tokens at once (prefill) or one (decode),
// of one sequence or of several at once (continuous batching: the weight products run once
// over every sequence's rows, attention and eviction per sequence in its own caches);
// architecture differences are fields of `ModelConfiguration`.

import Foundation
import IndexMemCache
import IndexMemKernels

// MARK: - Forward pass

/// Which positions of a chunk need logits.
public enum LogitsRequest: Sendable {
    case none, last, all
}

/// One sequence's block in a batched forward pass: tokens at consecutive positions from
/// `startPosition`, appended to the sequence's own caches.
public struct SequenceBlock {
    public var tokens: ArraySlice<Int>
    public var startPosition: Int
    public var caches: [any LayerCache]
    public var request: LogitsRequest
    /// (rows, vocab) floats for the rows `request` names; nil for `.none`.
    public var logits: UnsafeMutablePointer<Float>?

    public init(tokens: ArraySlice<Int>, startPosition: Int, caches: [any LayerCache], request: LogitsRequest,
                logits: UnsafeMutablePointer<Float>?) {
        self.tokens = tokens
        self.startPosition = startPosition
        self.caches = caches
        self.request = request
        self.logits = logits
    }
}

/// Runs the model. Holds scratch buffers for up to `maxChunk` rows (the tokens of one chunk,
/// or of every sequence in a batch); it is not thread-safe.
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
    /// (rows, vocab) logits of a batch of several sequences, before they go to each one's buffer.
    private var batchLogits: UnsafeMutablePointer<Float>?
    private var batchLogitsRows = 0

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
        kPlain?.deallocate(); hidden?.deallocate(); batchLogits?.deallocate()
    }

    /// Makes the per-layer caches for a full cache (every entry kept, up to `capacity`).
    /// Sliding-window layers keep every entry too (their attention masks by position).
    /// - Parameter entryType: how keys and values are stored (every layer alike, as llama.cpp's `type_k`/`type_v`).
    public func makeFullCaches(capacity: Int, entryType: KVEntryType = .f16) -> [any LayerCache] {
        (0..<configuration.layerCount).map {
            FullLayerCache(shape: configuration.attentionShape(layer: $0), capacity: capacity, entryType: entryType)
        }
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
            forwardBlocks([SequenceBlock(tokens: tokens[done..<(done + n)], startPosition: startPosition + done, caches: caches,
                                         request: chunkRequest, logits: out)])
            done += n
            progress?(done, tokens.count)
        }
    }

    /// Advances several sequences by one block each in one pass: every weight matrix is read
    /// once for all their rows. Each sequence's rows are computed as they would be alone
    /// whenever a product's arithmetic does not depend on its row count (every 32-value format,
    /// so SmolLM2 bit for bit); llama.cpp's batched K-quant arithmetics do depend on it.
    /// - Throws: `ModelError` for more rows than `maxChunk`, an empty block, a token outside
    ///   the vocabulary or a position past the context; nothing has run then.
    public func forward(batch: [SequenceBlock]) throws {
        let vocab = configuration.vocabularySize
        let rows = batch.reduce(0) { $0 + $1.tokens.count }
        guard rows <= maxChunk else { throw ModelError.batchTooLarge(rows: rows, limit: maxChunk) }
        for block in batch {
            guard !block.tokens.isEmpty else { throw ModelError.emptyBlock }
            for t in block.tokens where t < 0 || t >= vocab { throw ModelError.invalidToken(t, vocabularySize: vocab) }
            let end = block.startPosition + block.tokens.count
            guard end <= configuration.contextLength else {
                throw ModelError.contextExceeded(requested: end, limit: configuration.contextLength)
            }
        }
        guard !batch.isEmpty else { return }
        forwardBlocks(batch)
    }

    private func forwardBlocks(_ blocks: [SequenceBlock]) {
        let c = configuration
        let d = c.embeddingDimension, qd = c.queryDimension, kvd = c.kvDimension, ffn = c.feedForwardDimension
        let hd = c.headDimension, eps = c.rmsNormEpsilon
        // Block b's rows are offsets[b]..<offsets[b + 1].
        var offsets = [0]
        offsets.reserveCapacity(blocks.count + 1)
        for block in blocks { offsets.append(offsets.last! + block.tokens.count) }
        let n = offsets.last!
        var signals = PolicySignals()
        for (b, block) in blocks.enumerated() {
            for (t, position) in (block.startPosition..<(block.startPosition + block.tokens.count)).enumerated() {
                positionsBuffer[offsets[b] + t] = Int32(position)
            }
            for cache in block.caches { signals.formUnion(cache.signals) }
        }
        if signals.contains(.unrotatedKeys) && kPlain == nil { kPlain = .allocate(capacity: maxChunk * kvd) }
        if signals.contains(.hiddenStates) && hidden == nil { hidden = .allocate(capacity: maxChunk * d) }
        // Rows that need logits, ascending: the last layer's feed-forward runs on those only
        // (llama.cpp's `inp_out_ids`), after attention has seen every row.
        var outputRows: [Int] = []
        for (b, block) in blocks.enumerated() {
            switch block.request {
            case .none: break
            case .last: outputRows.append(offsets[b + 1] - 1)
            case .all: outputRows.append(contentsOf: offsets[b]..<offsets[b + 1])
            }
        }

        // MARK: Embedding
        var row = 0
        for block in blocks {
            for token in block.tokens {
                weights.tokenEmbedding.dequantizeRow(token, into: x + row * d)
                row += 1
            }
        }
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
            let wants = blocks.reduce(PolicySignals()) { $0.union($1.caches[l].signals) }
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
            // Attention per sequence, in its own caches (the normed input in xb is spent).
            for (b, block) in blocks.enumerated() {
                let r0 = offsets[b], count = offsets[b + 1] - r0
                let cache = block.caches[l]
                let own = cache.signals
                cache.append(AppendBatch(
                    keys: k + r0 * kvd, values: v + r0 * kvd, positions: positionsBuffer + r0, tokens: count,
                    unrotatedKeys: own.contains(.unrotatedKeys) ? kPlain.map { UnsafePointer($0 + r0 * kvd) } : nil,
                    hiddenStates: own.contains(.hiddenStates) ? hidden.map { UnsafePointer($0 + r0 * d) } : nil, hiddenDimension: d))
                cache.attend(queries: q + r0 * qd, positions: positionsBuffer + r0, tokens: count, output: xb + r0 * qd, pool: pool)
            }
            observer?(l, "kqv_out", xb, n, qd)
            project(xb, stride: qd, tokens: n, layer.output, yb, d)
            if let b = layer.outputBias { for t in 0..<n { VectorMath.add(b, into: yb + t * d, count: d) } }
            if l == c.layerCount - 1 && outputRows.count < n {
                // Keep only the rows that need logits (moved to the front, in order).
                rows = outputRows.count
                for (to, from) in outputRows.enumerated() where to != from {
                    (yb + to * d).update(from: yb + from * d, count: d)
                    (x + to * d).update(from: x + from * d, count: d)
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
        guard rows > 0 else { return }
        // One sequence writes straight into its buffer; a batch through scratch, then per sequence.
        let direct: UnsafeMutablePointer<Float>? = blocks.count == 1 ? blocks[0].logits : nil
        if blocks.count == 1 && direct == nil { return }
        for t in 0..<rows {
            VectorMath.rmsNorm(x + t * d, weight: weights.outputNorm, eps: eps, out: xb + t * d, count: d)
        }
        observer?(-1, "result_norm", xb, rows, d)
        let vocab = c.vocabularySize
        let logits = direct ?? batchLogitsScratch(rows: rows)
        project(xb, stride: d, tokens: rows, weights.output, logits, vocab)
        if let cap = c.finalLogitSoftcap {
            let inverse = 1 / cap
            for i in 0..<(rows * vocab) { logits[i] = tanhf(logits[i] * inverse) * cap }
        }
        guard direct == nil else { return }
        var next = 0
        for block in blocks {
            let count: Int
            switch block.request {
            case .none: count = 0
            case .last: count = 1
            case .all: count = block.tokens.count
            }
            block.logits?.update(from: logits + next * vocab, count: count * vocab)
            next += count
        }
    }

    private func batchLogitsScratch(rows: Int) -> UnsafeMutablePointer<Float> {
        if let batchLogits, batchLogitsRows >= rows { return batchLogits }
        batchLogits?.deallocate()
        let made = UnsafeMutablePointer<Float>.allocate(capacity: rows * configuration.vocabularySize)
        batchLogits = made
        batchLogitsRows = rows
        return made
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
