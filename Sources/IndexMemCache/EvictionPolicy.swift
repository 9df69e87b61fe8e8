// IndexMem — cache. Apache-2.0.
//
// A policy only scores entries; the shared selector (`BudgetSelector`) decides which go.
// The learned indexer and every heuristic are policies under the same protocol, so they
// compose with every selector (per-layer budgets, sinks, recent window).

import IndexMemKernels

// MARK: - Signals

/// What a policy needs from the forward pass. Signals nobody asked for are not computed.
public struct PolicySignals: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Keys before RoPE (the rotated keys are always available).
    public static let unrotatedKeys = PolicySignals(rawValue: 1 << 0)
    /// The layer's normalised input hidden states of the block being appended.
    public static let hiddenStates = PolicySignals(rawValue: 1 << 1)
    /// Attention weights of the newest queries (see `EvictionPolicy.attentionQueries`).
    public static let attention = PolicySignals(rawValue: 1 << 2)
}

// MARK: - What a layer appends

/// One block of new entries for one layer, with the signals the policy asked for.
public struct AppendBatch {
    /// (tokens, kvHeads, headDimension) rotated keys.
    public var keys: UnsafePointer<Float>
    /// (tokens, kvHeads, headDimension) values.
    public var values: UnsafePointer<Float>
    /// (tokens) absolute positions, consecutive.
    public var positions: UnsafePointer<Int32>
    public var tokens: Int
    /// (tokens, kvHeads, headDimension) keys before RoPE, if `.unrotatedKeys` was asked for.
    public var unrotatedKeys: UnsafePointer<Float>?
    /// (tokens, hiddenDimension) normalised layer inputs, if `.hiddenStates` was asked for.
    public var hiddenStates: UnsafePointer<Float>?
    public var hiddenDimension: Int

    public init(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int,
                unrotatedKeys: UnsafePointer<Float>? = nil, hiddenStates: UnsafePointer<Float>? = nil, hiddenDimension: Int = 0) {
        self.keys = keys
        self.values = values
        self.positions = positions
        self.tokens = tokens
        self.unrotatedKeys = unrotatedKeys
        self.hiddenStates = hiddenStates
        self.hiddenDimension = hiddenDimension
    }
}

// MARK: - Policy

/// A scoring rule for cache entries (higher = keep). One value describes the rule; it makes
/// one `LayerScorer` per layer that holds any per-layer state.
public protocol EvictionPolicy: Sendable {
    /// The spec string that names this policy with its options (`h2o`, `snapkv:window=64`).
    var spec: String { get }
    /// Signals the scorer reads.
    var signals: PolicySignals { get }
    /// With `.attention`: how many of the newest queries of each block contribute their
    /// attention weights (`Int.max` = all of them).
    var attentionQueries: Int { get }
    /// Floats kept beside each entry for the scorer (0 for none).
    var sideDimension: Int { get }
    /// The scorer of one layer (its shape, model layer and budgeted layer are in `layer`).
    func makeScorer(for layer: LayerContext) -> any LayerScorer
}

extension EvictionPolicy {
    public var attentionQueries: Int { 0 }
    public var sideDimension: Int { 0 }
}

/// The scores of one layer's entries. Every method works on one KV head: `scores` and
/// `positions` point at that head's slots.
public protocol LayerScorer: AnyObject {
    /// Scores (and side vectors) of entries just appended in slots `slots`; token `i` of the
    /// batch is in slot `slots.lowerBound + i`. Called for heads 0, 1, ... in order for each
    /// appended block (so per-block work shared by the heads can be done at head 0).
    func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage)

    /// After attention: `attention[j]` is the weight slot `j` received, summed over the
    /// group's query heads and the newest `attentionQueries` queries (`queries` of them).
    func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage)

    /// Once per block, after it was appended and attended: the block's hidden states may
    /// re-score every entry (an indexer's queries against the entries' side vectors). Called
    /// for heads 0, 1, ... in order, like `score(new:)`.
    func refresh(block batch: AppendBatch, head: Int, storage: KVStorage)
}

extension LayerScorer {
    public func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {}
    public func refresh(block batch: AppendBatch, head: Int, storage: KVStorage) {}
}
