// IndexMem — public facade. Apache-2.0.
//
// The policy of a plan, parsed once. Apps see its spec and what it needs, not the cache's
// scorers (which work on raw pointers inside the attention loop).

import IndexMemCache

// MARK: - Policy

/// An eviction policy resolved from its spec (`snapkv:window=32`): checked, typed, with its
/// options; a learned one gets its adapter's parameters when an `Engine` binds the plan.
public struct CachePolicy: Sendable {
    let resolved: ResolvedPolicy

    init(_ resolved: ResolvedPolicy) { self.resolved = resolved }

    /// Parses and checks a spec against the policies' declared names and options.
    public init(parsing spec: String) throws(PolicyError) { resolved = try PolicyRegistry.resolve(spec) }

    /// Keep every entry.
    public static let full = CachePolicy(.full)

    /// The canonical spec (written into reports and result files).
    public var spec: String { resolved.spec }
    /// Whether the cache keeps every entry (no budget applies).
    public var isFull: Bool { resolved.isFull }
    /// Whether the policy reads a trained adapter (`Engine.bind`).
    public var needsAdapter: Bool { resolved.needsAdapter }

    /// Every policy this build can run, as each declares itself.
    public static var available: [PolicyDefinition] { PolicyRegistry.all }
}

// MARK: - Names apps use

/// Why a policy spec was refused.
public typealias PolicyError = IndexMemCache.PolicyError
/// A policy's name, options, defaults and help (listed by `CachePolicy.available`).
public typealias PolicyDefinition = IndexMemCache.PolicyDefinition
public typealias PolicyOption = IndexMemCache.PolicyOption
/// Where a layer sits: what a receiver factory is given.
public typealias LayerContext = IndexMemCache.LayerContext
public typealias AttentionShape = IndexMemCache.AttentionShape
/// What takes evicted entries, and the factory a plan carries to make one per budgeted layer.
public typealias EvictedEntryReceiver = IndexMemCache.EvictedEntryReceiver
public typealias ReceiverFactory = IndexMemCache.ReceiverFactory
/// IndexMem's latent memory of evicted entries (a receiver).
public typealias LatentMemory = IndexMemCache.LatentMemory
public typealias LatentMemoryParameters = IndexMemCache.LatentMemoryParameters
/// How keys and values are stored (`CacheConfiguration.kvType`, `--kv-type`).
public typealias KVEntryType = IndexMemCache.KVEntryType
