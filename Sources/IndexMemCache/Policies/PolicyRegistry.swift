// IndexMem — cache policies. Apache-2.0.
//
// Policy names resolve through one registry, so the CLI (`--policy snapkv:window=64`), the
// server (a request field) and sweeps accept the same spec strings, and every result line
// can carry the spec that produced it. Modules above the cache (the learned indexer) add
// their policies with `register`.

import Foundation
import Synchronization

// MARK: - Errors

/// A policy spec that cannot be resolved, with a message a user can act on.
public enum PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptySpec
    case unknownPolicy(String, available: [String])
    case unknownOption(policy: String, option: String, allowed: [String])
    case invalidValue(policy: String, option: String, value: String, expected: String)
    case malformedOption(policy: String, text: String)
    case unavailable(policy: String, reason: String)
    case repeatedOption(policy: String, option: String)

    public var description: String {
        switch self {
        case .emptySpec: return "empty policy spec; expected NAME[:option=value,...]"
        case .unknownPolicy(let n, let a): return "unknown policy '\(n)'; available: \(a.joined(separator: ", "))"
        case .unknownOption(let p, let o, let a):
            return "policy '\(p)' has no option '\(o)'" + (a.isEmpty ? " (it takes none)" : "; options: \(a.joined(separator: ", "))")
        case .invalidValue(let p, let o, let v, let e): return "policy '\(p)': option \(o)=\(v) must be \(e)"
        case .malformedOption(let p, let t): return "policy '\(p)': '\(t)' is not option=value"
        case .unavailable(let p, let r): return "policy '\(p)' cannot be used: \(r)"
        case .repeatedOption(let p, let o): return "policy '\(p)': option '\(o)' is given twice; give it once"
        }
    }
}

// MARK: - Spec

/// `name[:option=value,...]`.
public struct PolicySpec: Sendable, Equatable, Codable, CustomStringConvertible {
    public var name: String
    public var options: [String: String]

    public init(name: String, options: [String: String] = [:]) {
        self.name = name
        self.options = options
    }

    public init(parsing text: String) throws(PolicyError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .emptySpec }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        name = parts[0].lowercased()
        guard !name.isEmpty else { throw .emptySpec }
        options = [:]
        if parts.count == 2 {
            for item in parts[1].split(separator: ",") where !item.isEmpty {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else { throw .malformedOption(policy: name, text: String(item)) }
                let key = String(kv[0]).trimmingCharacters(in: .whitespaces)
                // `window=1,window=2` has no single meaning: refuse it rather than pick one.
                guard options.updateValue(String(kv[1]).trimmingCharacters(in: .whitespaces), forKey: key) == nil else {
                    throw .repeatedOption(policy: name, option: key)
                }
            }
        }
    }

    public var description: String {
        options.isEmpty ? name : name + ":" + options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Checks that only `allowed` options are present.
    public func allowOnly(_ allowed: [String]) throws(PolicyError) {
        for key in options.keys where !allowed.contains(key) {
            throw .unknownOption(policy: name, option: key, allowed: allowed)
        }
    }

    public func int(_ option: String, default value: Int, in range: ClosedRange<Int>) throws(PolicyError) -> Int {
        guard let text = options[option] else { return value }
        guard let v = Int(text), range.contains(v) else {
            throw .invalidValue(policy: name, option: option, value: text, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public func double(_ option: String, default value: Double, in range: ClosedRange<Double>) throws(PolicyError) -> Double {
        guard let text = options[option] else { return value }
        guard let v = Double(text), range.contains(v) else {
            throw .invalidValue(policy: name, option: option, value: text, expected: "a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }
}


// MARK: - Resolution

/// What a spec resolves to: a scorer (nil for the full cache) and the budget schedule kind.
public struct ResolvedPolicy: Sendable {
    /// The scorer, or nil for `full` (no eviction).
    public var policy: (any EvictionPolicy)?
    /// PyramidKV's layer-wise budgets with this beta, or nil for the same budget everywhere.
    public var pyramidBeta: Double?
    /// The canonical spec (written into results).
    public var spec: String

    public func schedule(budget: Int) -> BudgetSchedule {
        pyramidBeta.map { .pyramid(budget: budget, beta: $0) } ?? .uniform(budget)
    }
}

public enum PolicyRegistry {
    public typealias Factory = @Sendable (PolicySpec) throws(PolicyError) -> any EvictionPolicy

    private static let extra = Mutex<[String: (factory: Factory, summary: String)]>([:])

    /// Built-in names with a one-line summary.
    public static let builtIn: [(name: String, summary: String)] = [
        ("full", "keep every entry (no budget)"),
        ("window", "StreamingLLM: sinks + most recent"),
        ("h2o", "accumulated attention (H2O)"),
        ("tova", "attention of the newest query (TOVA); option heads=layer|group"),
        ("snapkv", "pooled attention of an observation window (SnapKV); options window, kernel"),
        ("pyramid", "PyramidKV layer budgets over a scorer; options scorer (default snapkv), beta"),
        ("knorm", "lowest key norm"),
        ("random", "uniform random; option seed"),
        ("indexmem", "IndexMem's learned indexer, the better variant (needs an adapter)"),
        ("indexmem-query", "IndexMem's learned query-aware indexer (needs an adapter); option rate"),
        ("indexmem-static", "IndexMem's learned write-time indexer (needs an adapter)"),
    ]

    /// Policies that read a trained adapter.
    public static let learnedNames: Set<String> = ["indexmem", "indexmem-query", "indexmem-static"]

    /// Every policy name available now (built-in and registered).
    public static var names: [String] { builtIn.map(\.name) + extra.withLock { $0.keys.sorted() } }

    /// Adds a policy (e.g. the learned indexer, from a module above the cache).
    public static func register(name: String, summary: String, factory: @escaping Factory) {
        extra.withLock { $0[name] = (factory, summary) }
    }

    /// Whether a spec names a learned policy (directly or as pyramid's scorer), which needs an adapter.
    public static func needsAdapter(_ text: String) -> Bool {
        guard let spec = try? PolicySpec(parsing: text) else { return false }
        return learnedNames.contains(spec.name) || (spec.name == "pyramid" && learnedNames.contains(spec.options["scorer"] ?? ""))
    }

    /// Resolves a spec string; `indexer` holds the parameters the learned policies read.
    public static func resolve(_ text: String, indexer: IndexerParameters? = nil) throws(PolicyError) -> ResolvedPolicy {
        let spec = try PolicySpec(parsing: text)
        switch spec.name {
        case "full":
            try spec.allowOnly([])
            return ResolvedPolicy(policy: nil, pyramidBeta: nil, spec: "full")
        case "pyramid":
            try spec.allowOnly(["scorer", "beta"])
            let beta = try spec.double("beta", default: 20, in: 1...1000)
            let scorerName = spec.options["scorer"] ?? "snapkv"
            guard scorerName != "pyramid" && scorerName != "full" else {
                throw .invalidValue(policy: "pyramid", option: "scorer", value: scorerName, expected: "a scoring policy")
            }
            let scorer = try scorerPolicy(PolicySpec(name: scorerName), indexer: indexer)
            return ResolvedPolicy(policy: scorer, pyramidBeta: beta, spec: spec.description)
        default:
            let scorer = try scorerPolicy(spec, indexer: indexer)
            return ResolvedPolicy(policy: scorer, pyramidBeta: nil, spec: scorer.spec)
        }
    }

    static func scorerPolicy(_ spec: PolicySpec, indexer: IndexerParameters?) throws(PolicyError) -> any EvictionPolicy {
        switch spec.name {
        case "window":
            try spec.allowOnly([])
            return WindowPolicy()
        case "h2o":
            try spec.allowOnly([])
            return H2OPolicy()
        case "tova":
            try spec.allowOnly(["heads"])
            return try TOVAPolicy(spec: spec)
        case "knorm":
            try spec.allowOnly([])
            return KNormPolicy()
        case "snapkv":
            try spec.allowOnly(["window", "kernel"])
            return SnapKVPolicy(window: try spec.int("window", default: 64, in: 1...4096),
                                kernel: try spec.int("kernel", default: 5, in: 1...63))
        case "random":
            try spec.allowOnly(["seed"])
            return RandomPolicy(seed: UInt64(try spec.int("seed", default: 0, in: 0...Int.max)))
        case "indexmem", "indexmem-query", "indexmem-static":
            let variant: IndexerParameters.Variant = spec.name == "indexmem-query" ? .queryAware
                : spec.name == "indexmem-static" ? .writeTime : IndexerPolicy.defaultVariant
            try spec.allowOnly(variant == .queryAware ? ["rate", "pool"] : ["pool"])
            let rate = try spec.double("rate", default: IndexerPolicy.defaultRate, in: 0...1)
            let pool = try spec.int("pool", default: IndexerPolicy.defaultPool, in: 0...64)
            return IndexerPolicy(parameters: indexer, variant: variant, rate: rate, pool: pool)
        default:
            if let entry = extra.withLock({ $0[spec.name] }) { return try entry.factory(spec) }
            throw .unknownPolicy(spec.name, available: names)
        }
    }
}
