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
/// its queries; how entries are stored, kept or dropped stays inside the cache.
public protocol LayerCache: AnyObject {
    var shape: AttentionShape { get }
    /// Tokens appended so far (the next RoPE position when positions are contiguous).
    var tokensSeen: Int { get }
    /// Entries currently held per KV head.
    var count: Int { get }
    /// Bytes of keys and values currently held.
    var bytes: Int { get }

    /// Appends `tokens` entries.
    /// - Parameters:
    ///   - keys: (tokens, kvHeads, headDimension) floats.
    ///   - values: (tokens, kvHeads, headDimension) floats.
    ///   - positions: (tokens) absolute positions.
    func append(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int)

    /// Causal attention of `tokens` queries over the held entries.
    /// - Parameters:
    ///   - queries: (tokens, queryHeads, headDimension) floats, already rotated.
    ///   - positions: (tokens) absolute positions of the queries.
    ///   - output: (tokens, queryHeads, headDimension) floats.
    func attend(queries: UnsafePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool)

    /// Drops every entry.
    func reset()
}
