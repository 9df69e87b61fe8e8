// IndexMem — public facade. Apache-2.0.
//
// A session owns the stepping of one sequence: `prefill` the prompt (in chunks if the caller
// wants to interleave other work), `finishPrompt` (compresses in prefill-then-compress mode),
// `startDecoding`, then `decodeStep` until it returns nil. `generate` is these steps in a loop; the server's
// scheduler and the evaluation runner take the same steps, so the decode loop and the context
// limit live here only.

import Foundation
import IndexMemCache
import IndexMemKernels
import IndexMemModel

// MARK: - Session

/// One sequence: its KV cache, its position, and the logits of its last token.
/// Not thread-safe; use one per concurrent request.
public final class Session {
    public let engine: Engine
    /// The resolved cache plan (its adapter bound).
    public let cachePlan: CachePlan
    public private(set) var tokens: [Int] = []
    /// Its own forward pass, made on the first feed that is not part of a batch (a session
    /// stepped only by a `BatchStepper` never allocates one).
    private lazy var transformer = Transformer(weights: engine.weights, maxChunk: cachePlan.chunk, pool: engine.pool)
    /// Made on the first feed, when a `ratio` budget can be resolved against the context.
    private var caches: [any LayerCache] = []
    /// Entries kept per layer and KV head, once resolved (nil for the full cache).
    public private(set) var budget: Int?
    /// Logits after the last token fed (vocabulary size); a fixed buffer, so a batched
    /// forward pass can write them in place.
    private let logits: UnsafeMutableBufferPointer<Float>

    init(engine: Engine, plan: CachePlan) {
        self.engine = engine
        self.cachePlan = plan
        logits = .allocate(capacity: engine.configuration.vocabularySize)
        logits.initialize(repeating: 0)
    }

    deinit { logits.deallocate() }

    /// Makes the caches now, for a context of `contextTokens` (what a `ratio` budget is a
    /// fraction of), instead of on the first feed.
    public func prepare(contextTokens: Int) { ensureCaches(contextTokens: contextTokens) }

    private func ensureCaches(contextTokens: Int) {
        if caches.isEmpty {
            (caches, budget) = CacheBuilder.make(plan: cachePlan, model: engine.configuration, contextTokens: contextTokens)
        }
    }

    /// The per-layer caches (empty until the first feed), for inspection.
    public var layerCaches: [any LayerCache] { caches }

    /// Bytes of keys and values held now.
    public var kvBytes: Int { caches.reduce(0) { $0 + $1.bytes } }

    /// Bytes of latent-memory state held now (fixed by the adapter; 0 with the memory off).
    public var memoryBytes: Int { caches.reduce(0) { $0 + $1.receiverBytes } }

    /// The most bytes of keys and values held since the last reset (per layer, summed).
    public var kvBytesPeak: Int { caches.reduce(0) { $0 + $1.peakBytes } }

    // MARK: Stepping

    /// Feeds one chunk of the prompt (any length; the forward pass splits it into blocks of
    /// the plan's `chunk`). A caller that interleaves other work feeds `chunk` tokens at a time.
    /// - Parameter progress: prefill progress, (tokens done, tokens total).
    public func prefill(_ chunk: [Int], progress: ((Int, Int) -> Void)? = nil) throws {
        try feed(chunk, progress: progress)
    }

    /// Ends the prompt: in prefill-then-compress mode the cache compresses now, once.
    public func finishPrompt() {
        if cachePlan.mode == .prefillThenCompress && !compressed { compress() }
    }

    /// The decoding of a generation after the prompt (nothing to do when `maxTokens` is 0 or
    /// no position is left).
    public func startDecoding(_ options: GenerationOptions) -> Decoding {
        var decoding = Decoding(options: options, stopTokens: engine.stopTokens)
        if options.maxTokens <= 0 || remainingPositions == 0 { decoding.finishReason = .length }
        return decoding
    }

    /// One decoding step: feeds the token the previous step sampled, then samples the next.
    /// - Returns: the new token, or nil once the generation has ended (`decoding.finishReason`
    ///   says why: a stop token, or `length`). The token that reaches `maxTokens` or the last
    ///   position of the context is returned with `finishReason` already `.length`.
    public func decodeStep(_ decoding: inout Decoding) throws -> Int? {
        guard !decoding.isFinished else { return nil }
        if let previous = decoding.unfed {
            try feed([previous])
            decoding.unfed = nil
            decoding.steps += 1
        }
        return sampleNext(&decoding)
    }

    /// The second half of a decoding step, once the previous token is fed: samples the next.
    func sampleNext(_ decoding: inout Decoding) -> Int? {
        let next = decoding.sampler.sample(logits: logits, recent: tokens[...])
        if decoding.stopTokens.contains(next) {
            decoding.finishReason = .stop
            return nil
        }
        decoding.generated.append(next)
        // Every generated token has a position: the one whose successor would have none is the last.
        if decoding.generated.count >= decoding.maxTokens || remainingPositions <= 1 {
            decoding.finishReason = .length
        } else {
            decoding.unfed = next
        }
        return next
    }

    /// Feeds the prompt, then generates up to `options.maxTokens` tokens.
    /// - Parameter onToken: called with each new token id and the text it completes (may be
    ///   empty while a multi-byte character is incomplete); return `false` to stop.
    ///   - progress: prefill progress, (tokens done, tokens total).
    public func generate(prompt: [Int], options: GenerationOptions = GenerationOptions(),
                         progress: ((Int, Int) -> Void)? = nil,
                         onToken: (Int, String) -> Bool = { _, _ in true }) throws -> GenerationResult {
        guard !prompt.isEmpty || !tokens.isEmpty else { throw EngineError.emptyPrompt }
        guard options.maxTokens >= 0 else { throw EngineError.invalidOption("maxTokens must not be negative") }
        var timings = GenerationTimings()
        let start = DispatchTime.now().uptimeNanoseconds
        try prefill(prompt, progress: progress)
        finishPrompt()
        timings.prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        timings.prefillTokens = prompt.count

        var decoding = startDecoding(options)
        var decoder = TextAccumulator(tokenizer: engine.tokenizer)
        var text = ""
        let decodeStart = DispatchTime.now().uptimeNanoseconds
        while let next = try decodeStep(&decoding) {
            let piece = decoder.append(next)
            text += piece
            if !onToken(next, piece) { decoding.stop() }
        }
        timings.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e9
        timings.decodeTokens = decoding.steps
        text += decoder.flush()
        return GenerationResult(promptTokens: prompt, generatedTokens: decoding.generated, text: text,
                                finishReason: decoding.finishReason ?? .length, timings: timings, cache: cacheReport())
    }

    // MARK: Feeding

    /// Positions still available before the model's trained context is full.
    public var remainingPositions: Int { engine.configuration.contextLength - tokens.count }

    /// Logits after the last token fed (vocabulary size).
    public var lastLogits: [Float] { Array(logits) }

    /// Feeds tokens (prompt or continuation) and keeps the logits of the last one.
    public func feed(_ ids: [Int], progress: ((Int, Int) -> Void)? = nil) throws {
        guard !ids.isEmpty else { return }
        try engine.checkContext(tokens: tokens.count + ids.count)
        ensureCaches(contextTokens: ids.count)
        try transformer.forward(tokens: ids, startPosition: tokens.count, caches: caches, logits: .last, into: logits.baseAddress,
                                progress: progress)
        tokens += ids
    }

    // MARK: Batched feeding (see `BatchStepper`)

    /// This session's block of a batched forward pass: `ids` (one block: at most the plan's
    /// `chunk`, so bounded mode evicts at the same points as alone), its logits written here.
    /// - Throws: `EngineError` when the block does not fit the context or holds an unknown token.
    func batchBlock(_ ids: ArraySlice<Int>) throws -> SequenceBlock {
        precondition(!ids.isEmpty && ids.count <= cachePlan.chunk, "a batched block is one chunk")
        try engine.checkContext(tokens: tokens.count + ids.count)
        let vocab = engine.configuration.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
            throw EngineError.invalidOption("token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        ensureCaches(contextTokens: ids.count)
        return SequenceBlock(tokens: ids, startPosition: tokens.count, caches: caches, request: .last, logits: logits.baseAddress)
    }

    /// Records that the block made by `batchBlock(ids)` has run.
    func batchBlockDidRun(_ ids: ArraySlice<Int>) { tokens += ids }

    /// Runs `ids` and returns the logits of every position, (ids.count, vocab) row-major.
    public func feedReturningAllLogits(_ ids: [Int]) throws -> [Float] {
        try engine.checkContext(tokens: tokens.count + ids.count)
        ensureCaches(contextTokens: ids.count)
        var all = [Float](repeating: 0, count: ids.count * engine.configuration.vocabularySize)
        try all.withUnsafeMutableBufferPointer {
            try transformer.forward(tokens: ids, startPosition: tokens.count, caches: caches, logits: .all, into: $0.baseAddress)
        }
        tokens += ids
        if let last = all.indices.last {
            let v = engine.configuration.vocabularySize
            _ = logits.update(fromContentsOf: all[(last + 1 - v)...])
        }
        return all
    }

    // MARK: Compression and checkpoints

    /// Whether `compress()` has run (prefill-then-compress compresses once).
    public private(set) var compressed = false

    /// Evicts down to the budget now (prefill-then-compress, before the question).
    public func compress() {
        for c in caches { c.compress() }
        compressed = true
    }

    /// Evicts down to another budget now (per-layer schedules follow it); for evaluating
    /// several budgets from one prefill, largest first.
    /// - Throws: `CacheConfigurationError` for a budget the plan cannot take (below sinks + window).
    public func compress(budget newBudget: Int) throws(CacheConfigurationError) {
        // Sliding-window layers keep their window whatever the budget.
        let layers = CacheBuilder.layers(plan: try cachePlan.withBudget(newBudget), model: engine.configuration, budget: newBudget)
        for (cache, layer) in zip(caches, layers) {
            if case .budget(let share) = layer.bound { cache.compress(toBudget: share) }
        }
        budget = newBudget
        compressed = true
    }

    /// A point to come back to: later tokens can be dropped again with `rollback(to:)`.
    public struct Checkpoint {
        let caches: [CacheCheckpoint]
        let tokens: [Int]
        let logits: [Float]
    }

    public func checkpoint() -> Checkpoint {
        Checkpoint(caches: caches.map { $0.checkpoint() }, tokens: tokens, logits: Array(logits))
    }

    /// Forgets what was fed since `checkpoint` (no eviction may have happened in between).
    public func rollback(to checkpoint: Checkpoint) {
        for (cache, saved) in zip(caches, checkpoint.caches) { cache.rollback(to: saved) }
        tokens = checkpoint.tokens
        _ = logits.update(fromContentsOf: checkpoint.logits)
    }

    /// Empties the cache and the sequence.
    public func reset() {
        for c in caches { c.reset() }
        tokens = []
        compressed = false
    }

    // MARK: Report

    /// The cache's byte figures now.
    public func cacheReport() -> CacheReport {
        let c = engine.configuration
        let global = caches.enumerated().filter { c.slidingWindow(layer: $0.offset) == nil }.map(\.element)
        return CacheReport(policy: cachePlan.policySpec, mode: cachePlan.mode.rawValue,
                           budget: budget, kvBytes: kvBytes, kvBytesPeak: kvBytesPeak,
                           kvBytesFullCache: tokens.count * c.kvBytesPerToken(cachePlan.kvType),
                           memoryBytes: memoryBytes,
                           policyBytes: caches.reduce(0) { $0 + $1.policyBytes },
                           // Window drops of sliding-window layers are not policy evictions.
                           evictions: caches.enumerated().reduce(0) { $0 + (c.slidingWindow(layer: $1.offset) == nil ? $1.element.evictions : 0) },
                           entries: (global.isEmpty ? caches : global).map(\.count).max() ?? 0,
                           slidingLayers: c.slidingLayerCount, slidingWindow: c.slidingWindow,
                           budgetedLayers: budget == nil ? 0 : c.globalLayers.count,
                           indexerBytes: cachePlan.policy.needsAdapter ? (cachePlan.indexer?.parameters.bytes ?? 0) : 0,
                           kvType: cachePlan.kvType.rawValue)
    }
}
