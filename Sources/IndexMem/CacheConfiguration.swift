// IndexMem — public facade. Apache-2.0.
//
// What a user writes (flags, a request's fields, a sweep file): the policy as a spec string
// and plain numbers. `resolve()` turns it, once, into a `CachePlan`, the typed and checked
// form everything after the edge reads.

import IndexMemCache
import IndexMemModel

// MARK: - Cache configuration

/// How a session keeps its keys and values, as written. Run configuration, separate from the model's.
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
    /// The adapter file the learned policies and the memory read (nil: `adapters/<model file>.indexmem.safetensors`).
    public var adapter: String? = nil
    /// Whether evicted entries go to the adapter's latent memory, and how it is read.
    public var memory: MemoryMode = .off
    /// How keys and values are stored: f16 (default) or q8_0 (0.53x the bytes).
    public var kvType: KVEntryType = .f16

    public init(policy: String = "full", budget: Int? = nil, ratio: Double? = nil, mode: Mode = .bounded,
                sinks: Int = 4, window: Int = 64, chunk: Int = 256, adapter: String? = nil, memory: MemoryMode = .off,
                kvType: KVEntryType = .f16) {
        self.policy = policy
        self.budget = budget
        self.ratio = ratio
        self.mode = mode
        self.sinks = sinks
        self.window = window
        self.chunk = chunk
        self.adapter = adapter
        self.memory = memory
        self.kvType = kvType
    }

    /// The checked plan: the policy spec parsed (the one parse), every number checked.
    /// - Throws: the first problem, with a message a user can act on.
    public func resolve() throws(CacheConfigurationError) -> CachePlan {
        let resolved: CachePolicy
        do { resolved = try CachePolicy(parsing: policy) } catch { throw .policy(error) }
        if budget != nil && ratio != nil { throw .budgetAndRatio }
        return try CachePlan(policy: resolved, limit: budget.map(CachePlan.Limit.tokens) ?? ratio.map(CachePlan.Limit.ratio),
                             mode: mode, sinks: sinks, window: window, chunk: chunk, adapter: adapter, memory: memory, kvType: kvType)
    }

    /// Checks the configuration and throws a message a user can act on.
    public func validate() throws(CacheConfigurationError) { _ = try resolve() }

    /// Whether the policy keeps every entry. Parses the spec: code holding a plan reads `CachePlan.isFull`.
    public var isFull: Bool { (try? CachePolicy(parsing: policy))?.isFull ?? false }

    /// `CachePlan.kvBytesBound` of the resolved plan, for a one-off check.
    public func kvBytesBound(model: ModelConfiguration, promptTokens: Int, totalTokens: Int) throws(CacheConfigurationError) -> Int {
        try resolve().kvBytesBound(model: model, promptTokens: promptTokens, totalTokens: totalTokens)
    }
}

// MARK: - Memory

/// IndexMem's latent memory of evicted entries (DESIGN.md, "The IndexMem method").
public enum MemoryMode: String, Sendable, Codable, CaseIterable {
    /// Evicted entries are dropped.
    case off
    /// The adapter's memory, read through its trained gate (IndexMem's residual readout).
    case on
    /// The same memory's closed-form estimate merged into the softmax (memory-softmax, LESS style).
    case softmax

    /// Parses `off`, `on` or `softmax`.
    public init(parsing text: String) throws(CacheConfigurationError) {
        guard let mode = MemoryMode(rawValue: text) else { throw .unknownMemory(text) }
        self = mode
    }
}

// MARK: - KV entry type

extension KVEntryType {
    /// Parses `f16` or `q8_0`.
    public init(parsing text: String) throws(CacheConfigurationError) {
        guard let type = KVEntryType(rawValue: text) else { throw .unknownKVType(text) }
        self = type
    }

    /// The names, for help and error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

// MARK: - Errors

/// A cache configuration that cannot run, with a message a user can act on.
public enum CacheConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The policy spec names no policy, or its options are wrong.
    case policy(PolicyError)
    case budgetAndRatio
    case nonPositiveBudget(Int)
    case ratioOutOfRange(Double)
    case negativeProtection(sinks: Int, window: Int)
    case chunkOutOfRange(Int)
    /// A budget for the full cache, which evicts nothing.
    case budgetWithoutEviction
    /// An evicting policy without a budget or ratio.
    case missingBudget(policy: String)
    /// A budget that cannot hold the protected sinks and window.
    case budgetBelowProtected(budget: Int, sinks: Int, window: Int)
    /// A memory mode other than off, on and softmax.
    case unknownMemory(String)
    /// A memory for the full cache, which evicts nothing.
    case memoryWithoutEviction
    /// A KV entry type other than f16 and q8_0.
    case unknownKVType(String)
    /// A KV entry type the model's head dimension cannot be stored in (q8_0 needs multiples of 32).
    case kvTypeUnsupported(KVEntryType, headDimension: Int)

    public var description: String { "invalid cache configuration: " + reason }

    public var reason: String {
        switch self {
        case .policy(let e): return e.description
        case .budgetAndRatio: return "give either a budget or a ratio, not both"
        case .nonPositiveBudget(let b): return "budget must be positive, got \(b)"
        case .ratioOutOfRange(let r): return "ratio must be in (0, 1], got \(r)"
        case .negativeProtection: return "sinks and window must not be negative"
        case .chunkOutOfRange(let c): return "chunk must be in 1...4096, got \(c)"
        case .budgetWithoutEviction:
            return "policy 'full' keeps every entry; a budget needs an eviction policy (e.g. --policy snapkv)"
        case .missingBudget(let p): return "policy '\(p)' evicts entries: give a budget (--budget N) or a ratio (--ratio R)"
        case .budgetBelowProtected(let b, let s, let w):
            return "budget \(b) is smaller than sinks (\(s)) + window (\(w)) = \(s + w); raise the budget or lower --sinks/--window"
        case .unknownMemory(let m): return "memory must be off, on or softmax, got '\(m)'"
        case .memoryWithoutEviction: return "the full cache evicts nothing, so a memory has nothing to hold: choose an eviction policy or --memory off"
        case .unknownKVType(let t): return "KV type must be one of \(KVEntryType.names), got '\(t)'"
        case .kvTypeUnsupported(let t, let d):
            return "KV type \(t.rawValue) stores blocks of 32 values, but this model's head dimension is \(d); use --kv-type f16"
        }
    }
}
