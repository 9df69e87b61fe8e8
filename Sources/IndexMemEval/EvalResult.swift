// IndexMem — evaluation. Apache-2.0.

import Foundation

// MARK: - One result line

/// What `eval run` appends per finished sample (JSON keys in snake_case).
public struct EvalResult: Codable, Sendable, Equatable {
    public var id: String
    public var task: String
    /// Prompt length in tokens (the target length for generated tasks).
    public var length: Int
    public var policy: String
    /// Entries kept per layer and KV head (nil for the full cache).
    public var budget: Int?
    /// The requested ratio, when the budget was given as one.
    public var ratio: Double?
    public var mode: String
    /// Fraction of expected answers found, in [0, 1] (for perplexity: exp(-mean NLL)).
    public var score: Double
    public var output: String
    public var answers: [String]
    public var kvBytesPeak: Int
    public var kvBytesFullCache: Int
    public var modelSha256: String
    public var seconds: Double
    public var depth: Double?
    public var sample: Int
    public var seed: UInt64
    public var sinks: Int
    public var window: Int
    public var chunk: Int
    public var evictions: Int
    public var generatedTokens: Int
    public var perplexity: Double?
    public var dataset: String?
    /// The latent memory mode (`on`, `softmax`); nil when evicted entries were dropped.
    public var memory: String? = nil
    /// The KV entry type when it is not the default f16 (`q8_0`); nil for f16.
    public var kvType: String? = nil
    /// The generated token ids.
    public var outputTokenIds: [Int] = []
    /// The prompt's token ids, context block then question block (only with `--record-prompts`).
    public var contextTokenIds: [Int]? = nil
    public var questionTokenIds: [Int]? = nil

    enum CodingKeys: String, CodingKey {
        case id, task, length, policy, budget, ratio, mode, score, output, answers
        case kvBytesPeak = "kv_bytes_peak", kvBytesFullCache = "kv_bytes_full_cache", modelSha256 = "model_sha256"
        case seconds, depth, sample, seed, sinks, window, chunk, evictions
        case generatedTokens = "generated_tokens", perplexity, dataset, memory, kvType = "kv_type"
        case outputTokenIds = "output_token_ids", contextTokenIds = "context_token_ids", questionTokenIds = "question_token_ids"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id); task = try c.decode(String.self, forKey: .task)
        length = try c.decode(Int.self, forKey: .length); policy = try c.decode(String.self, forKey: .policy)
        budget = try c.decodeIfPresent(Int.self, forKey: .budget); ratio = try c.decodeIfPresent(Double.self, forKey: .ratio)
        mode = try c.decode(String.self, forKey: .mode); score = try c.decode(Double.self, forKey: .score)
        output = try c.decode(String.self, forKey: .output); answers = try c.decode([String].self, forKey: .answers)
        kvBytesPeak = try c.decode(Int.self, forKey: .kvBytesPeak); kvBytesFullCache = try c.decode(Int.self, forKey: .kvBytesFullCache)
        modelSha256 = try c.decode(String.self, forKey: .modelSha256); seconds = try c.decode(Double.self, forKey: .seconds)
        depth = try c.decodeIfPresent(Double.self, forKey: .depth); sample = try c.decode(Int.self, forKey: .sample)
        seed = try c.decode(UInt64.self, forKey: .seed); sinks = try c.decode(Int.self, forKey: .sinks)
        window = try c.decode(Int.self, forKey: .window); chunk = try c.decode(Int.self, forKey: .chunk)
        evictions = try c.decode(Int.self, forKey: .evictions); generatedTokens = try c.decode(Int.self, forKey: .generatedTokens)
        perplexity = try c.decodeIfPresent(Double.self, forKey: .perplexity); dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        memory = try c.decodeIfPresent(String.self, forKey: .memory)
        kvType = try c.decodeIfPresent(String.self, forKey: .kvType)
        outputTokenIds = try c.decodeIfPresent([Int].self, forKey: .outputTokenIds) ?? []
        contextTokenIds = try c.decodeIfPresent([Int].self, forKey: .contextTokenIds)
        questionTokenIds = try c.decodeIfPresent([Int].self, forKey: .questionTokenIds)
    }

    public init(id: String, task: String, length: Int, policy: String, budget: Int?, ratio: Double?, mode: String, score: Double, output: String, answers: [String], kvBytesPeak: Int, kvBytesFullCache: Int, modelSha256: String, seconds: Double, depth: Double?, sample: Int, seed: UInt64, sinks: Int, window: Int, chunk: Int, evictions: Int, generatedTokens: Int, perplexity: Double?, dataset: String?) {
        self.id = id
        self.task = task
        self.length = length
        self.policy = policy
        self.budget = budget
        self.ratio = ratio
        self.mode = mode
        self.score = score
        self.output = output
        self.answers = answers
        self.kvBytesPeak = kvBytesPeak
        self.kvBytesFullCache = kvBytesFullCache
        self.modelSha256 = modelSha256
        self.seconds = seconds
        self.depth = depth
        self.sample = sample
        self.seed = seed
        self.sinks = sinks
        self.window = window
        self.chunk = chunk
        self.evictions = evictions
        self.generatedTokens = generatedTokens
        self.perplexity = perplexity
        self.dataset = dataset
    }

    /// Every key is written, `null` included, so readers can rely on the fields being there.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(task, forKey: .task); try c.encode(length, forKey: .length)
        try c.encode(policy, forKey: .policy); try c.encode(budget, forKey: .budget); try c.encode(ratio, forKey: .ratio)
        try c.encode(mode, forKey: .mode); try c.encode(score, forKey: .score); try c.encode(output, forKey: .output)
        try c.encode(answers, forKey: .answers); try c.encode(kvBytesPeak, forKey: .kvBytesPeak)
        try c.encode(kvBytesFullCache, forKey: .kvBytesFullCache); try c.encode(modelSha256, forKey: .modelSha256)
        try c.encode(seconds, forKey: .seconds); try c.encode(depth, forKey: .depth); try c.encode(sample, forKey: .sample)
        try c.encode(seed, forKey: .seed); try c.encode(sinks, forKey: .sinks); try c.encode(window, forKey: .window)
        try c.encode(chunk, forKey: .chunk); try c.encode(evictions, forKey: .evictions)
        try c.encode(generatedTokens, forKey: .generatedTokens); try c.encode(perplexity, forKey: .perplexity)
        try c.encode(dataset, forKey: .dataset); try c.encode(memory, forKey: .memory); try c.encode(outputTokenIds, forKey: .outputTokenIds)
        // Written only when not f16, so the lines of f16 runs stay as they were.
        try c.encodeIfPresent(kvType, forKey: .kvType)
        try c.encodeIfPresent(contextTokenIds, forKey: .contextTokenIds)
        try c.encodeIfPresent(questionTokenIds, forKey: .questionTokenIds)
    }

    /// Identifies the work item this line finished (for resuming).
    public var key: WorkKey {
        WorkKey(id: id, policy: policy, budget: ratio == nil ? budget : nil, ratio: ratio, mode: budget == nil ? "full" : mode,
                sinks: sinks, window: window, chunk: chunk, memory: memory, kvType: kvType)
    }

    /// The policy as reports name it: its spec, with the memory when one was on and the KV
    /// type when it was not f16.
    public var policyLabel: String {
        let label = switch memory {
        case nil: policy
        case "on": policy + "+memory"
        case let m?: policy + "+memory-" + m
        }
        return kvType.map { label + "+" + $0 } ?? label
    }
}

/// One (sample, cache setting) pair of a sweep.
public struct WorkKey: Hashable, Sendable {
    public var id: String
    public var policy: String
    public var budget: Int?
    public var ratio: Double?
    public var mode: String
    public var sinks: Int
    public var window: Int
    public var chunk: Int
    public var memory: String? = nil
    /// The KV entry type when not f16.
    public var kvType: String? = nil
}

// MARK: - Results file

/// An append-only JSON-lines file: each result is written and flushed to disk as it finishes,
/// so a killed run loses at most the sample it was working on. A line cut short by a kill is
/// dropped when the file is opened again.
public final class ResultsFile {
    public let path: String
    public private(set) var results: [EvalResult] = []
    private let handle: FileHandle

    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            guard fm.createFile(atPath: path, contents: nil) else { throw EvalError.io("cannot create results file \(path)") }
        }
        let (loaded, good, total) = try Self.read(path: path)
        results = loaded
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw EvalError.io("cannot open results file \(path) for writing") }
        handle = h
        if good < total {
            try handle.truncate(atOffset: UInt64(good))
        }
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Work items already finished.
    public var finished: Set<WorkKey> { Set(results.map(\.key)) }

    /// Appends one result and forces it to disk.
    public func append(_ result: EvalResult) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(result)
        data.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: data)
        try handle.synchronize()
        results.append(result)
    }

    /// Reads the complete lines of a results file without changing it: the results, the bytes
    /// they span, and the file's size.
    public static func read(path: String) throws -> (results: [EvalResult], validBytes: Int, totalBytes: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalError.io("cannot read results file \(path)") }
        var results: [EvalResult] = []
        var good = 0, offset = 0
        let decoder = JSONDecoder()
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let end = offset + line.count
            defer { offset = end + 1 }
            if line.isEmpty { continue }
            // An unterminated or unreadable line is a write cut short: it and anything after are dropped.
            guard end < data.count, let r = try? decoder.decode(EvalResult.self, from: Data(line)) else { break }
            results.append(r)
            good = end + 1
        }
        return (results, good, data.count)
    }

    /// Results of several files (shards), later duplicates of a work item dropped. Read-only.
    public static func merge(paths: [String]) throws -> [EvalResult] {
        var seen = Set<WorkKey>()
        var out: [EvalResult] = []
        for p in paths {
            for r in try read(path: p).results where seen.insert(r.key).inserted { out.append(r) }
        }
        return out
    }
}
