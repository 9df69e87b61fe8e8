// IndexMem — public facade. Apache-2.0.

import IndexMemModel

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
    /// What a full cache would hold for the same tokens (in the same entry type).
    public var kvBytesFullCache: Int
    /// Bytes of the evicted-entry memory (the receivers' state; 0 when evicted entries are dropped).
    public var memoryBytes: Int
    /// Bytes of policy data beside the entries (positions, scores, side vectors).
    public var policyBytes: Int
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
    /// How keys and values are stored (`f16`, `q8_0`): every `kvBytes` figure is in this type.
    public var kvType: String = KVEntryType.f16.rawValue
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
