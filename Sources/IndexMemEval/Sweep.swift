// IndexMem — evaluation. Apache-2.0.
//
// A sweep is policy x budget x mode x length x task x sample (x depth for the needle grid).
// Its work items come in one deterministic order; `--shard k/n` takes the items whose index
// is k modulo n, so shards are disjoint and together complete, and a batch scheduler (a
// Slurm array, a Kubernetes indexed job) runs one shard per node.

import Foundation
import IndexMem

// MARK: - Spec

public struct SweepSpec: Codable, Sendable, Equatable {
    public var tasks: [String] = ["niah_single_prose"]
    public var lengths: [Int] = [2048]
    public var policies: [String] = ["full"]
    /// Budgets in tokens; each eviction policy runs at every budget (and every ratio).
    public var budgets: [Int] = []
    public var ratios: [Double] = []
    public var modes: [String] = ["bounded"]
    public var samples: Int = 1
    public var seed: UInt64 = 0
    /// Needle depths (0...1) for the needle grid; nil draws each sample's depth from its seed.
    public var depths: [Double]? = nil
    public var sinks: Int = 4
    public var window: Int = 64
    public var chunk: Int = 256
    /// A JSONL dataset instead of generated tasks.
    public var dataset: String? = nil
    /// The indexer adapter of the learned policies and the memory (nil: the model's default adapter).
    public var adapter: String? = nil
    /// Latent memory modes each evicting policy runs with (`off`, `on`, `softmax`).
    public var memories: [String] = ["off"]
    /// KV entry types every setting runs with (`f16`, `q8_0`); the config key `kv_type` takes
    /// one name or a list.
    public var kvTypes: [String] = ["f16"]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case tasks, lengths, policies, budgets, ratios, modes, samples, seed, depths, sinks, window, chunk, dataset, adapter, memories
        case kvTypes = "kv_type"
    }

    /// Every key is optional in a config file; missing ones keep their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SweepSpec()
        tasks = try c.decodeIfPresent([String].self, forKey: .tasks) ?? d.tasks
        lengths = try c.decodeIfPresent([Int].self, forKey: .lengths) ?? d.lengths
        policies = try c.decodeIfPresent([String].self, forKey: .policies) ?? d.policies
        budgets = try c.decodeIfPresent([Int].self, forKey: .budgets) ?? d.budgets
        ratios = try c.decodeIfPresent([Double].self, forKey: .ratios) ?? d.ratios
        modes = try c.decodeIfPresent([String].self, forKey: .modes) ?? d.modes
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? d.samples
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        depths = try c.decodeIfPresent([Double].self, forKey: .depths)
        sinks = try c.decodeIfPresent(Int.self, forKey: .sinks) ?? d.sinks
        window = try c.decodeIfPresent(Int.self, forKey: .window) ?? d.window
        chunk = try c.decodeIfPresent(Int.self, forKey: .chunk) ?? d.chunk
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        adapter = try c.decodeIfPresent(String.self, forKey: .adapter)
        memories = try c.decodeIfPresent([String].self, forKey: .memories) ?? d.memories
        if let one = try? c.decodeIfPresent(String.self, forKey: .kvTypes) {
            kvTypes = [one]
        } else {
            kvTypes = try c.decodeIfPresent([String].self, forKey: .kvTypes) ?? d.kvTypes
        }
    }

    /// Reads a small JSON config file (the same keys).
    public static func load(path: String) throws -> SweepSpec {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalError.io("cannot read sweep config \(path)") }
        do { return try JSONDecoder().decode(SweepSpec.self, from: data) } catch {
            throw EvalError.invalidSweep("\(path): \(error)")
        }
    }

    /// Cache plans of the sweep: the full cache once, every other policy at every budget and
    /// ratio. Each policy spec is parsed once here, for the whole sweep.
    public func cacheSettings() throws -> [CachePlan] {
        let modes = try self.modes.map { m -> CacheConfiguration.Mode in
            guard let mode = CacheConfiguration.Mode(rawValue: m) else { throw EvalError.invalidSweep("unknown mode '\(m)'") }
            return mode
        }
        let memoryModes = try memories.map { m -> MemoryMode in
            do { return try MemoryMode(parsing: m) } catch { throw EvalError.invalidSweep("\(error)") }
        }
        guard !memoryModes.isEmpty else { throw EvalError.invalidSweep("memories must name at least one of off, on, softmax") }
        let entryTypes = try kvTypes.map { t -> KVEntryType in
            do { return try KVEntryType(parsing: t) } catch { throw EvalError.invalidSweep("\(error)") }
        }
        guard !entryTypes.isEmpty else { throw EvalError.invalidSweep("kv_type must name at least one of \(KVEntryType.names)") }
        var out: [CachePlan] = []
        for kvType in entryTypes {
            for text in policies {
                let policy: CachePolicy
                do { policy = try CachePolicy(parsing: text) } catch { throw EvalError.invalidSweep("\(text): \(CacheConfigurationError.policy(error))") }
                func plan(_ limit: CachePlan.Limit?, _ mode: CacheConfiguration.Mode, _ memory: MemoryMode = .off) throws -> CachePlan {
                    do {
                        return try CachePlan(policy: policy, limit: limit, mode: mode, sinks: sinks, window: window, chunk: chunk, adapter: adapter,
                                             memory: memory, kvType: kvType)
                    } catch {
                        throw EvalError.invalidSweep("\(text): \(error)")
                    }
                }
                if policy.isFull {
                    out.append(try plan(nil, .bounded))
                    continue
                }
                guard !budgets.isEmpty || !ratios.isEmpty else { throw EvalError.invalidSweep("policy '\(text)' needs budgets or ratios") }
                for memory in memoryModes {
                    for mode in modes {
                        for b in budgets { out.append(try plan(.tokens(b), mode, memory)) }
                        for r in ratios { out.append(try plan(.ratio(r), mode, memory)) }
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Work items

/// One sample under one cache setting.
public struct WorkItem: Sendable {
    public var index: Int
    public var task: String
    public var length: Int
    public var sample: Int
    public var depth: Double?
    public var cache: CachePlan
    /// The sample's id (for generated samples computed without building them).
    public var sampleID: String

    /// The key its result line will carry.
    public var key: WorkKey {
        let full = cache.isFull
        return WorkKey(id: sampleID, policy: cache.policySpec, budget: full || cache.ratio != nil ? nil : cache.budget, ratio: cache.ratio,
                       mode: full ? "full" : cache.mode.rawValue, sinks: cache.sinks, window: cache.window, chunk: cache.chunk,
                       memory: cache.memory == .off ? nil : cache.memory.rawValue, kvType: cache.kvType == .f16 ? nil : cache.kvType.rawValue)
    }
}

public struct Shard: Sendable, Equatable {
    public var index: Int
    public var count: Int
    public static let all = Shard(index: 0, count: 1)

    /// Parses `k/n` with 0 <= k < n.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n > 0, k >= 0, k < n else {
            throw EvalError.invalidSweep("--shard takes k/n with 0 <= k < n, got '\(text)'")
        }
        index = k
        count = n
    }

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public func contains(_ item: Int) -> Bool { item % count == index }
}

extension SweepSpec {
    /// Every work item in the sweep's fixed order: sample by sample, each under every setting.
    public func workItems(datasetSamples: [EvalSample]? = nil) throws -> [WorkItem] {
        let settings = try cacheSettings()
        var items: [WorkItem] = []
        func add(task: String, length: Int, sample: Int, depth: Double?, id: String) {
            for c in settings {
                if task == PerplexityTask.name && c.mode == .prefillThenCompress { continue }
                items.append(WorkItem(index: items.count, task: task, length: length, sample: sample, depth: depth, cache: c, sampleID: id))
            }
        }
        if let datasetSamples {
            for (i, s) in datasetSamples.enumerated() { add(task: s.task, length: 0, sample: i, depth: nil, id: s.id) }
            return items
        }
        for task in tasks {
            if task != PerplexityTask.name { _ = try TaskRegistry.task(named: task) }
            for length in lengths {
                for sample in 0..<samples {
                    for depth in depths.map({ $0.map(Optional.some) }) ?? [nil] {
                        let id = task == PerplexityTask.name ? "\(task)-\(length)-\(sample)-s\(seed)"
                            : SampleBuilder.sampleID(task: task, length: length, index: sample, seed: seed, depth: depth)
                        add(task: task, length: length, sample: sample, depth: depth, id: id)
                    }
                }
            }
        }
        return items
    }
}
