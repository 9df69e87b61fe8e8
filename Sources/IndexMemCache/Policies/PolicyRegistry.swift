// IndexMem — cache policies. Apache-2.0.
//
// Policy names resolve through one registry, so the CLI (`--policy snapkv:window=64`), the
// server (a request field) and sweeps accept the same spec strings, and every result line
// can carry the spec that produced it. Each policy declares its name, options and help in its
// own file (`PolicyDefinition`); the registry lists those declarations and resolves specs
// against them. Modules above the cache may add policies with `register`.

import Synchronization

// MARK: - Resolution

/// What a spec resolves to: a scorer (nil for the full cache) and the budget schedule kind.
public struct ResolvedPolicy: Sendable {
    /// The scorer, or nil for `full` (no eviction).
    public var policy: (any EvictionPolicy)?
    /// PyramidKV's layer-wise budgets with this beta, or nil for the same budget everywhere.
    public var pyramidBeta: Double?
    /// The canonical spec (written into results).
    public var spec: String

    public init(policy: (any EvictionPolicy)?, pyramidBeta: Double?, spec: String) {
        self.policy = policy
        self.pyramidBeta = pyramidBeta
        self.spec = spec
    }

    /// A scorer under the same budget on every layer; its own spec is the canonical one.
    public init(scorer: any EvictionPolicy) { self.init(policy: scorer, pyramidBeta: nil, spec: scorer.spec) }

    /// Keep every entry.
    public static let full = ResolvedPolicy(policy: nil, pyramidBeta: nil, spec: "full")

    /// Whether the cache keeps every entry (no budget applies).
    public var isFull: Bool { policy == nil }

    /// Whether the scorer reads a trained adapter, which `binding(indexer:)` must supply.
    public var needsAdapter: Bool { policy is IndexerPolicy }

    public func schedule(budget: Int) -> BudgetSchedule {
        pyramidBeta.map { .pyramid(budget: budget, beta: $0) } ?? .uniform(budget)
    }

    /// The same policy reading `parameters` (a learned scorer; others are returned as they are).
    public func binding(indexer parameters: IndexerParameters) -> ResolvedPolicy {
        guard var learned = policy as? IndexerPolicy else { return self }
        learned.parameters = parameters
        var bound = self
        bound.policy = learned
        return bound
    }
}

// MARK: - Registry

public enum PolicyRegistry {
    private static let extra = Mutex<[String: PolicyDefinition]>([:])

    /// The built-in policies, in the order help and the README list them.
    public static let builtIn: [PolicyDefinition] = [
        FullPolicy.definition, WindowPolicy.definition, H2OPolicy.definition, TOVAPolicy.definition, SnapKVPolicy.definition,
        PyramidPolicy.definition, KNormPolicy.definition, RandomPolicy.definition,
    ] + IndexerPolicy.definitions

    /// Every policy available now: built-in, then registered ones by name.
    public static var all: [PolicyDefinition] { builtIn + extra.withLock { $0.values.sorted { $0.name < $1.name } } }

    /// Every policy name available now.
    public static var names: [String] { all.map(\.name) }

    /// The policy called `name`, if any.
    public static func definition(named name: String) -> PolicyDefinition? {
        builtIn.first { $0.name == name } ?? extra.withLock { $0[name] }
    }

    /// Adds a policy (e.g. from a module above the cache); a built-in name cannot be replaced.
    public static func register(_ definition: PolicyDefinition) {
        precondition(!builtIn.contains { $0.name == definition.name }, "'\(definition.name)' is a built-in policy")
        extra.withLock { $0[definition.name] = definition }
    }

    /// Resolves a spec string. A learned policy comes without parameters; bind them with
    /// `ResolvedPolicy.binding(indexer:)` before a cache is made.
    public static func resolve(_ text: String) throws(PolicyError) -> ResolvedPolicy {
        try resolve(PolicySpec(parsing: text))
    }

    /// Resolves a parsed spec against its policy's declared options.
    public static func resolve(_ spec: PolicySpec) throws(PolicyError) -> ResolvedPolicy {
        guard let definition = definition(named: spec.name) else { throw .unknownPolicy(spec.name, available: names) }
        try spec.allowOnly(definition.options.map(\.name))
        return try definition.resolve(PolicyArguments(spec: spec, options: definition.options))
    }
}
