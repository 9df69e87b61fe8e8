// IndexMem — public facade. Apache-2.0.
//
// The one resolved form of a cache configuration. The edges (the command line, the server's
// request parser, a sweep) make it once; sessions, the cache builder and the server's KV
// reservation read it and never see a spec string again. A plan is valid by construction:
// its initialiser checks what `CacheConfiguration.resolve()` would, and its changes
// (`protectRecent`, `withBudget`) keep it valid.

import IndexMemCache
import IndexMemModel

// MARK: - Plan

/// How a session keeps its keys and values: a typed, checked policy with its budget or
/// schedule, protected sinks and window, chunk, mode, and the adapter and receiver it reads.
public struct CachePlan: Sendable {
    /// How many entries a budgeted layer keeps per KV head.
    public enum Limit: Sendable, Equatable {
        /// This many tokens.
        case tokens(Int)
        /// This fraction of the first block fed (the context), never below sinks + window.
        case ratio(Double)
    }

    /// The policy (a learned one reads `indexer` once the plan is bound).
    public private(set) var policy: CachePolicy
    /// Nil for the full cache.
    public private(set) var limit: Limit?
    public let mode: CacheConfiguration.Mode
    /// Protected first tokens (StreamingLLM's attention sinks).
    public let sinks: Int
    /// Protected most recent tokens.
    public private(set) var window: Int
    /// Tokens per prefill chunk.
    public let chunk: Int
    /// The adapter file a learned policy reads (nil: the model's default adapter).
    public let adapter: String?
    /// The adapter's parameters, set by `Engine.bind` (loaded once per engine, shared).
    public private(set) var indexer: SharedIndexer?
    /// Makes each budgeted layer's evicted-entry receiver (a latent memory); nil drops evicted entries.
    /// `Engine.bind` sets it from the adapter when `memory` is on.
    public var receiver: ReceiverFactory?
    /// Whether the adapter's latent memory takes the evicted entries, and how it is read.
    public let memory: MemoryMode
    /// How every layer stores its keys and values.
    public let kvType: KVEntryType

    /// - Throws: the first problem, as `CacheConfiguration.resolve()` reports it.
    public init(policy: CachePolicy, limit: Limit?, mode: CacheConfiguration.Mode, sinks: Int, window: Int, chunk: Int,
                adapter: String? = nil, receiver: ReceiverFactory? = nil, memory: MemoryMode = .off,
                kvType: KVEntryType = .f16) throws(CacheConfigurationError) {
        switch limit {
        case .tokens(let b) where b <= 0: throw .nonPositiveBudget(b)
        case .ratio(let r) where !(r > 0 && r <= 1): throw .ratioOutOfRange(r)
        default: break
        }
        if sinks < 0 || window < 0 { throw .negativeProtection(sinks: sinks, window: window) }
        if chunk <= 0 || chunk > 4096 { throw .chunkOutOfRange(chunk) }
        if policy.isFull {
            if limit != nil { throw .budgetWithoutEviction }
            if memory != .off { throw .memoryWithoutEviction }
        } else {
            guard let limit else { throw .missingBudget(policy: policy.spec) }
            if case .tokens(let b) = limit, b < sinks + window { throw .budgetBelowProtected(budget: b, sinks: sinks, window: window) }
        }
        self.policy = policy
        self.limit = limit
        self.mode = mode
        self.sinks = sinks
        self.window = window
        self.chunk = chunk
        self.adapter = adapter
        self.receiver = receiver
        self.memory = memory
        self.kvType = kvType
    }

    /// The canonical policy spec.
    public var policySpec: String { policy.spec }
    /// Whether the cache keeps every entry.
    public var isFull: Bool { policy.isFull }
    /// Whether the policy or the memory reads a trained adapter (`Engine.bind` loads it).
    public var needsAdapter: Bool { policy.needsAdapter || memory != .off }
    /// The budget in tokens, when given as one.
    public var budget: Int? { if case .tokens(let b) = limit { b } else { nil } }
    /// The budget as a fraction of the context, when given as one.
    public var ratio: Double? { if case .ratio(let r) = limit { r } else { nil } }

    /// The budget for a context of `contextTokens` (from tokens, or the ratio of the context,
    /// never below sinks + window); nil for the full cache.
    public func resolvedBudget(contextTokens: Int) -> Int? {
        switch limit {
        case .tokens(let b): return b
        case .ratio(let r): return max(sinks + window, Int((r * Double(contextTokens)).rounded(.up)))
        case nil: return nil
        }
    }

    /// Widens the protected recent window to the newest `tokens` (a chat's last turn, so its
    /// template tokens are never evicted), as far as the budget for a context of
    /// `contextTokens` leaves room beside the sinks; a ratio becomes that budget.
    public mutating func protectRecent(_ tokens: Int, contextTokens: Int) {
        guard let resolved = resolvedBudget(contextTokens: contextTokens) else { return }
        window = max(window, min(tokens, resolved - sinks))
        if ratio != nil { limit = .tokens(resolved) }
    }

    /// The same plan under another budget in tokens (several budgets from one prefill).
    public func withBudget(_ tokens: Int) throws(CacheConfigurationError) -> CachePlan {
        try CachePlan(policy: policy, limit: .tokens(tokens), mode: mode, sinks: sinks, window: window, chunk: chunk,
                      adapter: adapter, receiver: receiver, memory: memory, kvType: kvType).binding(indexer)
    }

    /// The plan reading `indexer` (what `Engine.bind` found for it): a learned policy gets its
    /// parameters, and with `memory` on each budgeted layer gets the adapter's memory.
    func binding(_ indexer: SharedIndexer?) -> CachePlan {
        var bound = self
        bound.indexer = indexer
        guard let indexer else { return bound }
        bound.policy = CachePolicy(policy.resolved.binding(indexer: indexer.parameters))
        let layers = indexer.memory
        if memory != .off && !layers.isEmpty {
            let readout: LatentMemory.Readout = memory == .softmax ? .softmax : .gated
            bound.receiver = { layer in
                guard let index = layer.budgetedLayer, layers.indices.contains(index) else { return DiscardingReceiver() }
                return LatentMemory(parameters: layers[index], readout: readout)
            }
        }
        return bound
    }

    /// Checks what only the model can tell: that its heads fit the plan's KV entry type.
    /// - Throws: `CacheConfigurationError.kvTypeUnsupported`.
    public func check(model m: ModelConfiguration) throws(CacheConfigurationError) { try Self.checkEntryType(kvType, model: m) }

    /// Checks that the model's heads can be stored as `type`.
    /// - Throws: `CacheConfigurationError.kvTypeUnsupported`.
    public static func checkEntryType(_ type: KVEntryType, model m: ModelConfiguration) throws(CacheConfigurationError) {
        guard type.supports(headDimension: m.headDimension) else { throw .kvTypeUnsupported(type, headDimension: m.headDimension) }
    }

    /// Bytes the latent memories of a session hold at most (0 with the memory off): fixed by
    /// the adapter's rank, whatever the context.
    public var memoryBytesBound: Int {
        guard memory != .off, let layers = indexer?.memory else { return 0 }
        return layers.reduce(0) { $0 + $1.stateBytes }
    }
}
