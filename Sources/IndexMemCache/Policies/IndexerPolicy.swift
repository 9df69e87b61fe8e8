// IndexMem — cache policies. Apache-2.0.
//
// The learned indexer of IndexMem (DESIGN.md, "The IndexMem method"; trained by
// IndexMemLearn from a teacher pass of the frozen model). Two variants, both plain scorers
// under the policy protocol, so sinks, the recent window and pyramid budgets compose with them:
//
// * `indexmem-static` (write-time, KVzap style): an entry's score is fixed when it enters,
//   a linear function of its normalised layer input and its keys before RoPE, fitted so that
//   its ranking of a sequence's entries matches the attention they later receive (listwise
//   KL; a closed-form ridge fit to the log of that attention is the trainer's other choice).
//   Cost: O(features) per entry and KV head, nothing per query.
// * `indexmem-query` (query-aware, after DeepSeek-V3.2's lightning indexer): every entry keeps a
//   small indexer key `k_I = W_k x` (a side vector made when it entered); each block's hidden
//   states give indexer queries `q_j = W_q,j x` and head weights `w_j = W_w,j x`, and the
//   block scores entry s by `mean_t sum_j w_j(t) ReLU(q_j(t) . k_I(s))`. Scores are an
//   exponential moving average over blocks (rate per token), so that in bounded mode, where
//   eviction happens long before the question, an entry keeps what earlier blocks thought
//   of it; an entry's first score is its own block's. Cost: O(block x heads x entries x d_I) per block, O(heads x entries x d_I) per
//   decoded token.
//
// `indexmem` names the better of the two on the development samples (`IndexerPolicy.defaultVariant`).
// One set of parameters per budgeted layer (the layer index the cache passes), shared by the
// layer's KV heads for the query-aware variant and per KV head for the static one.

import Foundation
import IndexMemKernels

// MARK: - Parameters

/// The parameters of a learned indexer, one entry per budgeted layer.
public struct IndexerParameters: Sendable, Equatable {
    public enum Variant: String, Sendable, CaseIterable {
        /// `indexmem-static`: a linear score fixed at write time.
        case writeTime = "static"
        /// `indexmem-query`: indexer queries of each block against per-entry indexer keys.
        case queryAware = "query"
    }

    /// Static weights of one layer: (kvHeads, staticFeatures) with
    /// staticFeatures = hiddenDimension + kvHeads * headDimension + 1 (the bias last).
    public var staticWeights: [[Float]]
    /// Query-aware parameters of each layer (empty arrays when not trained).
    public var queryProjection: [[Float]]   // (heads, keyDimension, hiddenDimension)
    public var keyProjection: [[Float]]     // (keyDimension, hiddenDimension)
    public var headWeights: [[Float]]       // (heads, hiddenDimension)
    public var hiddenDimension: Int
    public var kvHeads: Int
    public var headDimension: Int
    public var indexerHeads: Int
    public var keyDimension: Int
    /// Temperature the query-aware scores were trained with (scores are divided by it).
    public var temperature: Float

    public init(staticWeights: [[Float]] = [], queryProjection: [[Float]] = [], keyProjection: [[Float]] = [],
                headWeights: [[Float]] = [], hiddenDimension: Int, kvHeads: Int, headDimension: Int,
                indexerHeads: Int = 0, keyDimension: Int = 0, temperature: Float = 1) {
        self.staticWeights = staticWeights
        self.queryProjection = queryProjection
        self.keyProjection = keyProjection
        self.headWeights = headWeights
        self.hiddenDimension = hiddenDimension
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.indexerHeads = indexerHeads
        self.keyDimension = keyDimension
        self.temperature = temperature
    }

    public var staticFeatures: Int { hiddenDimension + kvHeads * headDimension + 1 }

    /// Budgeted layers the parameters cover.
    public var layerCount: Int { max(staticWeights.count, keyProjection.count) }

    public func has(_ variant: Variant) -> Bool {
        switch variant {
        case .writeTime: return !staticWeights.isEmpty
        case .queryAware: return !keyProjection.isEmpty
        }
    }

    /// Why these parameters cannot drive a model with these shapes, or nil when they can.
    public func mismatch(budgetedLayers: Int, hiddenDimension: Int, kvHeads: Int, headDimension: Int) -> String? {
        guard layerCount == budgetedLayers, self.hiddenDimension == hiddenDimension, self.kvHeads == kvHeads,
              self.headDimension == headDimension else {
            return "it was trained for \(layerCount) budgeted layers of hidden \(self.hiddenDimension), \(self.kvHeads) KV heads of \(self.headDimension); the model has \(budgetedLayers) of hidden \(hiddenDimension), \(kvHeads) KV heads of \(headDimension)"
        }
        return nil
    }

    /// Bytes of parameters (reported as the indexer's bytes).
    public var bytes: Int {
        4 * [staticWeights, queryProjection, keyProjection, headWeights].reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    }
}

// MARK: - Policy

/// A learned scorer. Resolving a spec gives one without parameters (enough to validate a
/// configuration and plan its budgets); the facade binds the adapter's parameters before any
/// cache is made, and `makeScorer` requires them.
public struct IndexerPolicy: EvictionPolicy {
    public var parameters: IndexerParameters?
    public let variant: IndexerParameters.Variant
    /// Query-aware: EMA rate per token of the block scores (a block of n tokens weighs 1 - (1 - rate)^n).
    public let rate: Double
    /// An entry's eviction score is the largest learned score of the held entries within this
    /// many positions (0: its own), so that the neighbours of an entry that matters stay with
    /// it: a number or a name spans several tokens, and losing one of them loses the fact.
    public let pool: Int

    public static let defaultRate = 1.0 / 512
    public static let defaultPool = 0

    public init(parameters: IndexerParameters?, variant: IndexerParameters.Variant, rate: Double = IndexerPolicy.defaultRate,
                pool: Int = IndexerPolicy.defaultPool) {
        self.parameters = parameters
        self.variant = variant
        self.rate = rate
        self.pool = pool
    }

    /// The variant `--policy indexmem` runs: the one that scored better on the development
    /// samples (docs/results/indexmem).
    public static let defaultVariant: IndexerParameters.Variant = .writeTime

    public var spec: String {
        var options: [String] = []
        if pool != Self.defaultPool { options.append("pool=\(pool)") }
        if variant == .queryAware && rate != Self.defaultRate { options.append("rate=\(rate)") }
        let name = variant == .writeTime ? "indexmem-static" : "indexmem-query"
        return options.isEmpty ? name : name + ":" + options.joined(separator: ",")
    }

    public var signals: PolicySignals { variant == .writeTime ? [.hiddenStates, .unrotatedKeys] : .hiddenStates }
    /// The query-aware indexer's key, then the learned score before pooling.
    public var sideDimension: Int { (variant == .queryAware ? (parameters?.keyDimension ?? 0) : 0) + 1 }

    /// Why these parameters cannot drive a model with `budgetedLayers` budgeted layers of this
    /// shape, or nil when they can.
    public func incompatibility(budgetedLayers: Int, hiddenDimension: Int, shape: AttentionShape) -> String? {
        guard let p = parameters else { return "no adapter is bound" }
        guard p.has(variant) else { return "the adapter holds no \(variant.rawValue) indexer (policy '\(spec)')" }
        return p.mismatch(budgetedLayers: budgetedLayers, hiddenDimension: hiddenDimension, kvHeads: shape.kvHeads,
                          headDimension: shape.headDimension).map { "the adapter does not fit: " + $0 }
    }

    /// Parameters are per budgeted layer (`context.budgetedLayer`), not per model layer.
    public func makeScorer(for context: LayerContext) -> any LayerScorer {
        guard let parameters else { preconditionFailure("indexer policy used without parameters (the facade binds them)") }
        guard let layer = context.budgetedLayer else { preconditionFailure("indexer policy on a layer no budget applies to") }
        precondition(layer < parameters.layerCount, "indexer has \(parameters.layerCount) layers, asked for layer \(layer)")
        switch variant {
        case .writeTime: return WriteTimeScorer(parameters: parameters, layer: layer, pool: pool)
        case .queryAware: return QueryAwareScorer(parameters: parameters, layer: layer, rate: rate, pool: pool)
        }
    }
}

// MARK: - Write-time scorer

final class WriteTimeScorer: LayerScorer {
    let weights: [Float]
    let hidden: Int, kvHeads: Int, headDimension: Int, features: Int
    var pooling: PositionPooling

    init(parameters p: IndexerParameters, layer: Int, pool: Int) {
        weights = p.staticWeights[layer]
        hidden = p.hiddenDimension
        kvHeads = p.kvHeads
        headDimension = p.headDimension
        features = p.staticFeatures
        pooling = PositionPooling(radius: pool)
    }

    func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
        guard let h = batch.hiddenStates, let k = batch.unrotatedKeys else {
            preconditionFailure("indexmem-static needs hidden states and unrotated keys")
        }
        let scores = storage.scores(head: head)
        let keyWidth = kvHeads * headDimension
        weights.withUnsafeBufferPointer { w in
            let wh = w.baseAddress! + head * features
            for (i, slot) in slots.enumerated() {
                let s = VectorMath.dot(wh, h + i * batch.hiddenDimension, count: hidden)
                    + VectorMath.dot(wh + hidden, k + i * keyWidth, count: keyWidth) + wh[features - 1]
                scores[slot] = s
                storage.side(head: head, slot: slot)[0] = s
            }
        }
    }

    func refresh(block batch: AppendBatch, head: Int, storage: KVStorage) {
        pooling.apply(head: head, storage: storage, rawOffset: 0)
    }
}

// MARK: - Pooling over positions

/// Writes each held entry's eviction score: the largest raw learned score (side vector
/// element `rawOffset`) among the held entries within `radius` positions.
struct PositionPooling {
    let radius: Int
    private var order: [Int] = []
    private var window: [Int] = []

    init(radius: Int) { self.radius = radius }

    mutating func apply(head: Int, storage: KVStorage, rawOffset: Int) {
        let n = storage.counts[head], scores = storage.scores(head: head)
        let d = storage.sideDimension
        let raw = storage.side + head * storage.capacity * d + rawOffset
        guard radius > 0 else {
            for j in 0..<n { scores[j] = raw[j * d] }
            return
        }
        let positions = storage.positions(head: head)
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: 0..<n)
        // Slots are in position order except where decoding filled a hole; sort only then.
        if (1..<max(n, 1)).contains(where: { positions[$0] < positions[$0 - 1] }) {
            order.sort { positions[$0] < positions[$1] }
        }
        // Sliding-window maximum over positions (a deque of slots with decreasing raw scores).
        window.removeAll(keepingCapacity: true)
        var front = 0, next = 0
        let r = Int32(radius)
        for rank in 0..<n {
            let slot = order[rank], p = positions[slot]
            while next < n && positions[order[next]] <= p + r {
                let candidate = order[next]
                while window.count > front && raw[window[window.count - 1] * d] <= raw[candidate * d] { window.removeLast() }
                window.append(candidate)
                next += 1
            }
            while positions[window[front]] < p - r { front += 1 }
            scores[slot] = raw[window[front] * d]
        }
    }
}

// MARK: - Query-aware scorer

final class QueryAwareScorer: LayerScorer {
    let queryProjection: [Float], keyProjection: [Float], headWeights: [Float]
    let hidden: Int, heads: Int, keyDimension: Int
    let rate: Double, inverseTemperature: Float
    /// (tokens, heads, keyDimension) indexer queries and (tokens, heads) weights of the last block.
    private var queries: [Float] = []
    private var weights: [Float] = []
    private var pooling: PositionPooling

    init(parameters p: IndexerParameters, layer: Int, rate: Double, pool: Int) {
        queryProjection = p.queryProjection[layer]
        keyProjection = p.keyProjection[layer]
        headWeights = p.headWeights[layer]
        hidden = p.hiddenDimension
        heads = p.indexerHeads
        keyDimension = p.keyDimension
        self.rate = rate
        inverseTemperature = 1 / p.temperature
        pooling = PositionPooling(radius: pool)
    }

    /// (tokens, keyDimension) indexer keys of the block being appended, made once for all KV heads.
    private var blockKeys: [Float] = []

    func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
        guard let h = batch.hiddenStates else { preconditionFailure("indexmem needs hidden states") }
        let n = batch.tokens
        if head == 0 {
            if blockKeys.count < n * keyDimension { blockKeys = [Float](repeating: 0, count: n * keyDimension) }
            keyProjection.withUnsafeBufferPointer { wk in
                blockKeys.withUnsafeMutableBufferPointer { keys in
                    for i in 0..<n {
                        let x = h + i * batch.hiddenDimension
                        for r in 0..<keyDimension { keys[i * keyDimension + r] = VectorMath.dot(wk.baseAddress! + r * hidden, x, count: hidden) }
                    }
                }
            }
        }
        let scores = storage.scores(head: head)
        blockKeys.withUnsafeBufferPointer { keys in
            for (i, slot) in slots.enumerated() {
                let key = storage.side(head: head, slot: slot)
                key.update(from: keys.baseAddress! + i * keyDimension, count: keyDimension)
                // Not scored yet: the block's own refresh (before any eviction) gives its first score.
                key[keyDimension] = .nan
                scores[slot] = 0
            }
        }
    }

    /// Indexer queries and head weights of a block (made at head 0, shared by the KV heads).
    private func prepare(block batch: AppendBatch) {
        let h = batch.hiddenStates!, n = batch.tokens
        if queries.count < n * heads * keyDimension { queries = [Float](repeating: 0, count: n * heads * keyDimension) }
        if weights.count < n * heads { weights = [Float](repeating: 0, count: n * heads) }
        queryProjection.withUnsafeBufferPointer { wq in
            headWeights.withUnsafeBufferPointer { ww in
                queries.withUnsafeMutableBufferPointer { q in
                    weights.withUnsafeMutableBufferPointer { w in
                        for t in 0..<n {
                            let x = h + t * batch.hiddenDimension
                            for j in 0..<heads {
                                w[t * heads + j] = VectorMath.dot(ww.baseAddress! + j * hidden, x, count: hidden)
                                for r in 0..<keyDimension {
                                    q[(t * heads + j) * keyDimension + r] =
                                        VectorMath.dot(wq.baseAddress! + (j * keyDimension + r) * hidden, x, count: hidden)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func refresh(block batch: AppendBatch, head: Int, storage: KVStorage) {
        guard batch.tokens > 0 else { return }
        if head == 0 { prepare(block: batch) }
        let n = storage.counts[head], t = batch.tokens
        let alpha = Float(1 - pow(1 - rate, Double(t)))
        let scale = inverseTemperature / Float(t)
        queries.withUnsafeBufferPointer { q in
            weights.withUnsafeBufferPointer { w in
                for s in 0..<n {
                    let key = storage.side(head: head, slot: s)
                    var total: Float = 0
                    for i in 0..<(t * heads) {
                        let d = VectorMath.dot(q.baseAddress! + i * keyDimension, key, count: keyDimension)
                        if d > 0 { total += w[i] * d }
                    }
                    let blockScore = total * scale
                    let raw = key[keyDimension]
                    key[keyDimension] = raw.isNaN ? blockScore : (1 - alpha) * raw + alpha * blockScore
                }
            }
        }
        pooling.apply(head: head, storage: storage, rawOffset: keyDimension)
    }
}

// MARK: - Names and options

extension IndexerPolicy {
    /// `indexmem` (the better variant), `indexmem-query` and `indexmem-static`.
    public static let definitions: [PolicyDefinition] = [
        definition(name: "indexmem", variant: defaultVariant,
                   summary: "IndexMem's learned indexer, the better variant (needs an adapter)",
                   keeps: "IndexMem's learned indexer, the variant that scored better (today `\(IndexerPolicy(parameters: nil, variant: defaultVariant).spec)`; see below; needs an adapter)"),
        definition(name: "indexmem-query", variant: .queryAware, summary: "IndexMem's learned query-aware indexer (needs an adapter)",
                   keeps: "IndexMem's learned query-aware indexer (see below; needs an adapter)"),
        definition(name: "indexmem-static", variant: .writeTime, summary: "IndexMem's learned write-time indexer (needs an adapter)",
                   keeps: "IndexMem's learned write-time indexer (see below; needs an adapter)"),
    ]

    private static func definition(name: String, variant: IndexerParameters.Variant, summary: String, keeps: String) -> PolicyDefinition {
        let pool = PolicyOption("pool", .integer(default: defaultPool, range: 0...64), help: "positions whose best score an entry shares")
        let rate = PolicyOption("rate", .number(default: defaultRate, range: 0...1), help: "moving-average rate per token")
        return PolicyDefinition(name: name, summary: summary, keeps: keeps, options: variant == .queryAware ? [rate, pool] : [pool]) {
            arguments throws(PolicyError) in
            let rate = variant == .queryAware ? try arguments.double("rate") : defaultRate
            return ResolvedPolicy(scorer: IndexerPolicy(parameters: nil, variant: variant, rate: rate, pool: try arguments.int("pool")))
        }
    }
}
