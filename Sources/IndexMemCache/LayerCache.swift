// IndexMem — cache. Apache-2.0.

import IndexMemKernels

// MARK: - Attention geometry

/// The shape of one attention layer, as the cache needs it.
public struct AttentionShape: Sendable, Equatable {
    /// Query heads.
    public var queryHeads: Int
    /// Key/value heads (query heads are grouped onto them, GQA).
    public var kvHeads: Int
    /// Dimension of one head.
    public var headDimension: Int
    /// Multiplier of `q . k` before the softmax (usually 1/sqrt(headDimension)).
    public var scale: Float
    /// If set, a query at position p sees only entries at positions > p - slidingWindow.
    public var slidingWindow: Int?

    public init(queryHeads: Int, kvHeads: Int, headDimension: Int, scale: Float, slidingWindow: Int? = nil) {
        self.queryHeads = queryHeads
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.scale = scale
        self.slidingWindow = slidingWindow
    }

    /// Query heads per KV head.
    public var groupSize: Int { queryHeads / kvHeads }
}

// MARK: - Per-layer cache protocol

/// One layer's key/value store. The cache owns attention: a layer appends its new keys and
/// values (already rotated at their absolute positions) and asks for the attention output of
/// its queries; how entries are stored, kept, dropped or remembered stays inside the cache.
public protocol LayerCache: AnyObject {
    var shape: AttentionShape { get }
    /// Tokens appended so far (the next RoPE position when positions are contiguous).
    var tokensSeen: Int { get }
    /// Entries currently held (the most of any KV head).
    var count: Int { get }
    /// Bytes of keys and values currently held.
    var bytes: Int { get }
    /// The most bytes of keys and values held at any time since the last reset.
    var peakBytes: Int { get }
    /// Bytes of policy data beside the entries (positions, scores, side vectors).
    var policyBytes: Int { get }
    /// Bytes of the evicted-entry receiver's state (a latent memory; 0 when evicted entries are dropped).
    var receiverBytes: Int { get }
    /// Entries evicted since the last reset (summed over KV heads).
    var evictions: Int { get }
    /// The signals this cache's policy needs from the forward pass.
    var signals: PolicySignals { get }

    /// Appends one block of entries (`batch.tokens` at most the chunk size the cache was
    /// made for).
    func append(_ batch: AppendBatch)

    /// Causal attention of the block's `tokens` queries over the held entries, then any
    /// eviction the cache's mode calls for.
    /// - Parameters:
    ///   - queries: (tokens, queryHeads, headDimension) floats, already rotated.
    ///   - positions: (tokens) absolute positions of the queries.
    ///   - output: (tokens, queryHeads, headDimension) floats.
    func attend(queries: UnsafePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool)

    /// Evicts down to the budget now (prefill-then-compress); a no-op for caches that never evict.
    func compress()

    /// Evicts down to `budget` entries per KV head now (a budget other than the cache's own,
    /// for evaluating several budgets from one prefill, largest first).
    func compress(toBudget budget: Int)

    /// Remembers the current entries' count and scores, so that entries appended later can be
    /// rolled back. A cache that evicts as it appends (a sliding window, a bounded cache) saves
    /// a copy of its entries instead, so entries it evicts after the checkpoint come back too;
    /// its evicted-entry receiver's state is not rolled back.
    func checkpoint() -> CacheCheckpoint

    /// Drops everything appended since `checkpoint` and restores the scores it saw.
    func rollback(to checkpoint: CacheCheckpoint)

    /// Drops every entry.
    func reset()
}

/// What `LayerCache.checkpoint()` saves.
public struct CacheCheckpoint: Sendable {
    /// How the entries come back.
    public enum Entries: Sendable {
        /// Per KV head the entry count to truncate to and the scores then (nothing was evicted
        /// in between).
        case prefix(counts: [Int], scores: [[Float]])
        /// A copy of the entries, for caches that evict as they append.
        case copy(KVSnapshot)
    }
    public var entries: Entries
    public var tokensSeen: Int
    /// The eviction state of a bounded cache (unused by a full cache).
    public var newestPosition: Int32 = 0
    public var peakBytes = 0
    public var evictions = 0
}

extension LayerCache {
    public var signals: PolicySignals { [] }
    public var policyBytes: Int { 0 }
    public var receiverBytes: Int { 0 }
    public var evictions: Int { 0 }
    public func compress() {}
    public func compress(toBudget budget: Int) {}
}
