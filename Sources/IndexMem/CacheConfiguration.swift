// IndexMem — public facade. Apache-2.0.

import IndexMemCache

// MARK: - Cache configuration

/// How a session keeps its keys and values. Run configuration, separate from the model's.
public struct CacheConfiguration: Sendable, Codable, Equatable {
    /// When the cache compresses.
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Prefill in chunks and evict after each one; peak KV = budget + one chunk.
        case bounded
        /// Prefill everything with a full cache, compress once before the question (kvpress's protocol).
        case prefillThenCompress = "prefill-then-compress"
    }

    /// Policy specification, `name[:opt=val,...]` (e.g. `full`, `snapkv:window=64`).
    public var policy: String = "full"
    /// Entries kept per layer and KV head, in tokens; `nil` means "use `ratio`" or unbounded.
    public var budget: Int? = nil
    /// Budget as a fraction of the first block of tokens fed (the context), instead of `budget`.
    public var ratio: Double? = nil
    /// When compression happens.
    public var mode: Mode = .bounded
    /// Protected first tokens (StreamingLLM's attention sinks).
    public var sinks: Int = 4
    /// Protected most recent tokens.
    public var window: Int = 64
    /// Tokens per prefill chunk.
    public var chunk: Int = 256
    /// The adapter file the learned policies read (nil: `adapters/<model file>.indexmem.safetensors`).
    public var adapter: String? = nil
    /// The adapter's parameters, bound by `Engine.makeSession` (loaded once per Engine).
    public var indexer: SharedIndexer? = nil

    private enum CodingKeys: String, CodingKey { case policy, budget, ratio, mode, sinks, window, chunk, adapter }

    public init(policy: String = "full", budget: Int? = nil, ratio: Double? = nil, mode: Mode = .bounded,
                sinks: Int = 4, window: Int = 64, chunk: Int = 256, adapter: String? = nil) {
        self.policy = policy
        self.budget = budget
        self.ratio = ratio
        self.mode = mode
        self.sinks = sinks
        self.window = window
        self.chunk = chunk
        self.adapter = adapter
    }

    /// Names of the policies this build can run.
    public static var availablePolicies: [String] { PolicyRegistry.names }

    /// The policy this configuration names, resolved.
    public func resolvedPolicy() throws(EngineError) -> ResolvedPolicy {
        do { return try PolicyRegistry.resolve(policy, indexer: indexer?.parameters) } catch { throw .invalidCacheConfiguration(error.description) }
    }

    /// Whether the policy reads a trained adapter.
    public var needsAdapter: Bool { PolicyRegistry.needsAdapter(policy) }

    /// Whether the cache keeps every entry.
    public var isFull: Bool { (try? resolvedPolicy())?.policy == nil }

    /// Checks the configuration and throws a message a user can act on.
    public func validate() throws(EngineError) {
        let resolved = try resolvedPolicy()
        if budget != nil && ratio != nil { throw .invalidCacheConfiguration("give either a budget or a ratio, not both") }
        if let b = budget, b <= 0 { throw .invalidCacheConfiguration("budget must be positive, got \(b)") }
        if let r = ratio, !(r > 0 && r <= 1) { throw .invalidCacheConfiguration("ratio must be in (0, 1], got \(r)") }
        if sinks < 0 || window < 0 { throw .invalidCacheConfiguration("sinks and window must not be negative") }
        if chunk <= 0 || chunk > 4096 { throw .invalidCacheConfiguration("chunk must be in 1...4096, got \(chunk)") }
        if resolved.policy == nil {
            if budget != nil || ratio != nil {
                throw .invalidCacheConfiguration("policy 'full' keeps every entry; a budget needs an eviction policy (e.g. --policy snapkv)")
            }
            return
        }
        guard budget != nil || ratio != nil else {
            throw .invalidCacheConfiguration("policy '\(resolved.spec)' evicts entries: give a budget (--budget N) or a ratio (--ratio R)")
        }
        if let b = budget, b < sinks + window {
            throw .invalidCacheConfiguration(
                "budget \(b) is smaller than sinks (\(sinks)) + window (\(window)) = \(sinks + window); raise the budget or lower --sinks/--window")
        }
    }

    /// The budget for a context of `contextTokens` (from `budget`, or `ratio` of the context,
    /// never below sinks + window); nil for the full cache.
    public func resolvedBudget(contextTokens: Int) -> Int? {
        if let budget { return budget }
        if let ratio { return max(sinks + window, Int((ratio * Double(contextTokens)).rounded(.up))) }
        return nil
    }
}
