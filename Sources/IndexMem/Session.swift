// IndexMem — public facade. Apache-2.0.

import Foundation
import IndexMemCache
import IndexMemKernels

// MARK: - Generation options and results

/// What to generate.
public struct GenerationOptions: Sendable {
    /// Most tokens to generate.
    public var maxTokens: Int = 128
    /// How tokens are chosen.
    public var sampling: SamplingOptions = .greedy
    /// Stop at end-of-sequence and end-of-turn tokens.
    public var stopAtEndOfTurn: Bool = true

    public init(maxTokens: Int = 128, sampling: SamplingOptions = .greedy, stopAtEndOfTurn: Bool = true) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopAtEndOfTurn = stopAtEndOfTurn
    }
}

/// Wall-clock figures of one generation.
public struct GenerationTimings: Sendable, Codable {
    public var prefillSeconds: Double = 0
    public var decodeSeconds: Double = 0
    public var prefillTokens = 0
    public var decodeTokens = 0
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefillTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(decodeTokens) / decodeSeconds : 0 }
}

/// Byte figures of the KV cache.
public struct CacheReport: Sendable, Codable {
    /// The canonical policy spec.
    public var policy: String
    public var mode: String
    /// Entries kept per layer and KV head (the average for per-layer schedules); nil = full cache.
    public var budget: Int?
    /// Bytes of keys and values held now.
    public var kvBytes: Int
    /// The most bytes of keys and values held (per layer, summed over layers).
    public var kvBytesPeak: Int
    /// What a full cache would hold for the same tokens.
    public var kvBytesFullCache: Int
    /// Bytes of evicted-entry memory and policy data (positions, scores, side vectors).
    public var memoryBytes: Int
    /// Entries evicted so far, summed over layers and KV heads.
    public var evictions: Int
    /// Entries held now, the most of any layer the budget applies to (of any layer when
    /// every layer slides).
    public var entries: Int
    /// Layers that attend through a sliding window; each keeps its `slidingWindow` newest
    /// entries (plus up to 31 older ones and one block), whatever the policy; the budget
    /// applies to the other layers.
    public var slidingLayers: Int = 0
    /// The sliding window of those layers, if any.
    public var slidingWindow: Int? = nil
    /// Layers whose entries the budget bounds (the layers that do not slide; 0 without a budget).
    public var budgetedLayers: Int = 0
    /// Bytes of the learned indexer's parameters (shared by every session of an engine; 0 for heuristics).
    public var indexerBytes: Int = 0
}

/// The outcome of `Session.generate`.
public struct GenerationResult: Sendable {
    public enum FinishReason: String, Sendable { case length, stop }
    public var promptTokens: [Int]
    public var generatedTokens: [Int]
    public var text: String
    public var finishReason: FinishReason
    public var timings: GenerationTimings
    public var cache: CacheReport
}

// MARK: - Session

/// One sequence: its KV cache, its position, and the logits of its last token.
/// Not thread-safe; use one per concurrent request.
public final class Session {
    public let engine: Engine
    public let cacheConfiguration: CacheConfiguration
    public private(set) var tokens: [Int] = []
    private let transformer: Transformer
    /// Made on the first feed, when a `ratio` budget can be resolved against the context.
    private var caches: [any LayerCache] = []
    /// Entries kept per layer and KV head, once resolved (nil for the full cache).
    public private(set) var budget: Int?
    private var logits: [Float]

    init(engine: Engine, cache: CacheConfiguration) {
        self.engine = engine
        self.cacheConfiguration = cache
        let c = engine.configuration
        transformer = Transformer(weights: engine.weights, maxChunk: cache.chunk, pool: engine.pool)
        logits = [Float](repeating: 0, count: c.vocabularySize)
    }

    /// Makes the caches now, for a context of `contextTokens` (what a `ratio` budget is a
    /// fraction of), instead of on the first feed.
    public func prepare(contextTokens: Int) throws { try ensureCaches(contextTokens: contextTokens) }

    private func ensureCaches(contextTokens: Int) throws {
        if caches.isEmpty {
            (caches, budget) = try CacheBuilder.make(configuration: cacheConfiguration, model: engine.configuration,
                                                     contextTokens: contextTokens)
        }
    }

    /// The per-layer caches (empty until the first feed), for inspection.
    public var layerCaches: [any LayerCache] { caches }

    /// Bytes of keys and values held now.
    public var kvBytes: Int { caches.reduce(0) { $0 + $1.bytes } }

    /// The most bytes of keys and values held since the last reset (per layer, summed).
    public var kvBytesPeak: Int { caches.reduce(0) { $0 + $1.peakBytes } }

    /// Whether `compress()` has run (prefill-then-compress compresses once).
    public private(set) var compressed = false

    /// Evicts down to the budget now (prefill-then-compress, before the question).
    public func compress() {
        for c in caches { c.compress() }
        compressed = true
    }

    /// Evicts down to another budget now (per-layer schedules follow it); for evaluating
    /// several budgets from one prefill, largest first.
    public func compress(budget newBudget: Int) throws {
        // Sliding-window layers keep their window whatever the budget.
        let bounds = try CacheBuilder.layerBounds(configuration: cacheConfiguration, model: engine.configuration, budget: newBudget)
        for (cache, bound) in zip(caches, bounds) {
            if case .budget(let share, _, _) = bound { cache.compress(toBudget: share) }
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
        Checkpoint(caches: caches.map { $0.checkpoint() }, tokens: tokens, logits: logits)
    }

    /// Forgets what was fed since `checkpoint` (no eviction may have happened in between).
    public func rollback(to checkpoint: Checkpoint) {
        for (cache, saved) in zip(caches, checkpoint.caches) { cache.rollback(to: saved) }
        tokens = checkpoint.tokens
        logits = checkpoint.logits
    }

    /// Positions still available before the model's trained context is full.
    public var remainingPositions: Int { engine.configuration.contextLength - tokens.count }

    /// Logits after the last token fed (vocabulary size).
    public var lastLogits: [Float] { logits }

    /// Samples the next token from the last logits in place (a server's step: no copy of
    /// the vocabulary-sized row per token). The logits are spent afterwards: feed a token
    /// before sampling again.
    public func sampleNext(with sampler: inout Sampler) -> Int {
        logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, recent: tokens[...]) }
    }

    /// Feeds tokens (prompt or continuation) and keeps the logits of the last one.
    public func feed(_ ids: [Int], progress: ((Int, Int) -> Void)? = nil) throws {
        guard !ids.isEmpty else { return }
        guard ids.count <= remainingPositions else {
            throw EngineError.promptTooLong(tokens: tokens.count + ids.count, limit: engine.configuration.contextLength)
        }
        try ensureCaches(contextTokens: ids.count)
        try logits.withUnsafeMutableBufferPointer {
            try transformer.forward(tokens: ids, startPosition: tokens.count, caches: caches, logits: .last, into: $0.baseAddress,
                                      progress: progress)
        }
        tokens += ids
    }

    /// Runs `ids` and returns the logits of every position, (ids.count, vocab) row-major.
    public func feedReturningAllLogits(_ ids: [Int]) throws -> [Float] {
        guard ids.count <= remainingPositions else {
            throw EngineError.promptTooLong(tokens: tokens.count + ids.count, limit: engine.configuration.contextLength)
        }
        try ensureCaches(contextTokens: ids.count)
        var all = [Float](repeating: 0, count: ids.count * engine.configuration.vocabularySize)
        try all.withUnsafeMutableBufferPointer {
            try transformer.forward(tokens: ids, startPosition: tokens.count, caches: caches, logits: .all, into: $0.baseAddress)
        }
        tokens += ids
        if let last = all.indices.last {
            let v = engine.configuration.vocabularySize
            logits = Array(all[(last + 1 - v)...])
        }
        return all
    }

    /// Empties the cache and the sequence.
    public func reset() {
        for c in caches { c.reset() }
        tokens = []
        compressed = false
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
        let limit = engine.configuration.contextLength
        guard tokens.count + prompt.count <= limit else {
            throw EngineError.promptTooLong(tokens: tokens.count + prompt.count, limit: limit)
        }
        var timings = GenerationTimings()
        let start = DispatchTime.now().uptimeNanoseconds
        try feed(prompt, progress: progress)
        if cacheConfiguration.mode == .prefillThenCompress && !compressed { compress() }
        timings.prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        timings.prefillTokens = prompt.count

        var sampler = Sampler(options: options.sampling)
        let stops = options.stopAtEndOfTurn ? engine.stopTokens : []
        var generated: [Int] = []
        var decoder = TextAccumulator(tokenizer: engine.tokenizer)
        var text = ""
        var finish = GenerationResult.FinishReason.length
        let decodeStart = DispatchTime.now().uptimeNanoseconds
        var steps = 0
        while generated.count < options.maxTokens && tokens.count < limit {
            let next = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, recent: tokens[...]) }
            if stops.contains(next) { finish = .stop; break }
            generated.append(next)
            let piece = decoder.append(next)
            text += piece
            if !onToken(next, piece) { finish = .stop; break }
            if generated.count == options.maxTokens { break }
            try feed([next])
            steps += 1
        }
        timings.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e9
        timings.decodeTokens = steps
        text += decoder.flush()
        return GenerationResult(promptTokens: prompt, generatedTokens: generated, text: text,
                                finishReason: finish, timings: timings, cache: cacheReport())
    }

    /// The cache's byte figures now.
    public func cacheReport() -> CacheReport {
        let c = engine.configuration
        let spec = (try? cacheConfiguration.resolvedPolicy().spec) ?? cacheConfiguration.policy
        let global = caches.enumerated().filter { c.slidingWindow(layer: $0.offset) == nil }.map(\.element)
        return CacheReport(policy: spec, mode: cacheConfiguration.mode.rawValue,
                           budget: budget, kvBytes: kvBytes, kvBytesPeak: kvBytesPeak,
                           kvBytesFullCache: tokens.count * c.kvBytesPerToken,
                           memoryBytes: caches.reduce(0) { $0 + $1.auxiliaryBytes },
                           // Window drops of sliding-window layers are not policy evictions.
                           evictions: caches.enumerated().reduce(0) { $0 + (c.slidingWindow(layer: $1.offset) == nil ? $1.element.evictions : 0) },
                           entries: (global.isEmpty ? caches : global).map(\.count).max() ?? 0,
                           slidingLayers: c.slidingLayerCount, slidingWindow: c.slidingWindow,
                           budgetedLayers: budget == nil ? 0 : c.globalLayers.count,
                           indexerBytes: cacheConfiguration.needsAdapter ? (cacheConfiguration.indexer?.parameters.bytes ?? 0) : 0)
    }
}

// MARK: - Incremental text

/// Turns token ids into text as they arrive, holding back incomplete UTF-8 sequences.
/// (`package`: the server's stop-string stream decodes through it too.)
package struct TextAccumulator {
    let tokenizer: any Tokenizer
    private var pending: [UInt8] = []

    package init(tokenizer: any Tokenizer) { self.tokenizer = tokenizer }

    /// Adds a token; returns the newly completed text.
    package mutating func append(_ id: Int) -> String {
        pending += tokenizer.pieceBytes(id)
        // Emit everything up to the last complete UTF-8 character.
        var end = pending.count
        var back = 0
        while back < 4 && end - back - 1 >= 0 {
            let b = pending[end - back - 1]
            if b & 0xC0 == 0x80 { back += 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if need > back + 1 { end -= back + 1 }
            break
        }
        let piece = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeFirst(end)
        return piece
    }

    /// The bytes of an incomplete last character, decoded (as U+FFFD), once generation has ended.
    package mutating func flush() -> String {
        guard !pending.isEmpty else { return "" }
        let rest = String(decoding: pending, as: UTF8.self)
        pending = []
        return rest
    }
}
