// IndexMem — cache policies. Apache-2.0.
//
// TOVA (Oren et al. 2024, "Transformers are Multi-State RNNs", arXiv:2401.06104): evict the
// entry the current query attends to least.
// Signals: attention of the newest query of each block. Cost: O(entries) per block and KV head.
//
// Which heads (option `heads`):
// * `layer` (default, the published choice): the newest query's attention averaged over ALL
//   query heads of the layer, one score per position shared by every KV head, so every head
//   keeps the same positions. This is what the paper's code does (the mean over dim 1 of the
//   last row of the attention weights, one top-k per layer) and what kvpress's TOVAPress does
//   (`attn_weights.mean(1)`, repeated over the KV heads).
//   Storage is per KV head and a head's slots are not tied to positions, so the score is
//   shared by position: `refresh(head:)` is called for every KV head in order (0..<kvHeads,
//   see `BoundedLayerCache.attend`); the scorer adds each head's attention into one sum per
//   slot of head 0 (by slot while a head holds head 0's positions slot for slot, which is
//   always so when every head keeps the same positions; by a position index otherwise) and,
//   at the last head, writes the mean into every head's slots by position. O(entries) per
//   block either way, so decoding stays O(entries) per token.
// * `group` (the engine's earlier behaviour): each KV head scores by the attention of its own
//   GQA group of query heads (their sum); heads may keep different positions.
//
// Deviations from the paper: during chunked prefill (bounded mode) the "current query" is the
// block's last token (the paper decodes token by token); in prefill-then-compress mode that is
// the context's last token, as in kvpress. The shared selector protects the sinks and the
// recent window (the paper protects nothing; kvpress protects only the newest token).

// MARK: - tova

public struct TOVAPolicy: EvictionPolicy {
    /// Whose attention scores an entry.
    public enum Heads: String, Sendable, CaseIterable {
        /// The mean over all query heads of the layer, shared by every KV head (TOVA, kvpress).
        case layer
        /// The sum over the KV head's own group of query heads.
        case group
    }

    /// The published choice (the paper's code, kvpress).
    public static let defaultHeads = Heads.layer

    public static let definition = PolicyDefinition(
        name: "tova", summary: "attention of the newest query (TOVA)",
        keeps: "most attention from the newest query (TOVA). `heads=layer` (default): averaged over all query heads of the layer, one score per position shared by every KV head, so all heads keep the same positions (the paper's and kvpress's choice); `heads=group`: each KV head scored by its own query-head group",
        readsAttention: "newest query",
        options: [PolicyOption("heads", .choice(default: defaultHeads.rawValue, among: Heads.allCases.map(\.rawValue)),
                               help: "whose attention scores an entry")]
    ) { arguments throws(PolicyError) in
        ResolvedPolicy(scorer: TOVAPolicy(heads: Heads(rawValue: try arguments.choice("heads"))!))
    }

    public let heads: Heads

    public init(heads: Heads = TOVAPolicy.defaultHeads) { self.heads = heads }

    public var spec: String { heads == Self.defaultHeads ? "tova" : "tova:heads=\(heads.rawValue)" }
    public var signals: PolicySignals { .attention }
    public var attentionQueries: Int { 1 }

    public func makeScorer(for layer: LayerContext) -> any LayerScorer {
        switch heads {
        case .group: return GroupSumScorer()
        case .layer: return LayerMeanScorer(shape: layer.shape)
        }
    }

    /// Scores of new entries are 0 until the next refresh (which covers them too).
    static func clear(head: Int, slots: Range<Int>, storage: KVStorage) {
        let scores = storage.scores(head: head)
        for slot in slots { scores[slot] = 0 }
    }

    final class GroupSumScorer: IndexMemCache.LayerScorer {
        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            TOVAPolicy.clear(head: head, slots: slots, storage: storage)
        }

        func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {
            storage.scores(head: head).update(from: attention, count: storage.counts[head])
        }
    }

    final class LayerMeanScorer: IndexMemCache.LayerScorer {
        let kvHeads: Int
        let queryHeads: Int
        /// Attention summed over the heads refreshed so far, per slot of head 0.
        var total: [Float] = []
        /// Attention to positions head 0 does not hold (only when heads hold different positions).
        var elsewhere: [Int32: Float] = [:]
        /// Head 0's slot of each position, built only when a head's slots differ from head 0's.
        var slotOfPosition: [Int32: Int] = [:]
        var indexed = false
        /// Heads whose slots hold head 0's positions slot for slot (this round).
        var aligned: [Bool]
        var queries = 0

        init(shape: AttentionShape) {
            kvHeads = shape.kvHeads
            queryHeads = shape.queryHeads
            aligned = Array(repeating: true, count: shape.kvHeads)
        }

        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            TOVAPolicy.clear(head: head, slots: slots, storage: storage)
        }

        func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {
            let n = storage.counts[head]
            if head == 0 {
                total.removeAll(keepingCapacity: true)
                total.append(contentsOf: UnsafeBufferPointer(start: attention, count: n))
                elsewhere.removeAll(keepingCapacity: true)
                slotOfPosition.removeAll(keepingCapacity: true)
                indexed = false
                aligned[0] = true
                self.queries = queries
            } else if isAligned(head, storage) {
                total.withUnsafeMutableBufferPointer { t in
                    for j in 0..<n { t[j] += attention[j] }
                }
                aligned[head] = true
            } else {
                aligned[head] = false
                index(storage)
                let positions = storage.positions(head: head)
                for j in 0..<n {
                    let p = positions[j]
                    if let s = slotOfPosition[p] { total[s] += attention[j] } else { elsewhere[p, default: 0] += attention[j] }
                }
            }
            if head == kvHeads - 1 { share(storage) }
        }

        /// Whether `head` holds head 0's positions in the same slots.
        private func isAligned(_ head: Int, _ storage: KVStorage) -> Bool {
            let n = storage.counts[head]
            guard n == storage.counts[0] else { return false }
            let a = storage.positions(head: 0), b = storage.positions(head: head)
            for j in 0..<n where a[j] != b[j] { return false }
            return true
        }

        private func index(_ storage: KVStorage) {
            guard !indexed else { return }
            let positions = storage.positions(head: 0)
            for j in 0..<storage.counts[0] { slotOfPosition[positions[j]] = j }
            indexed = true
        }

        /// Writes the layer mean into every head's slots, by position.
        private func share(_ storage: KVStorage) {
            let scale = 1 / Float(queryHeads * max(queries, 1))
            for h in 0..<kvHeads {
                let n = storage.counts[h], scores = storage.scores(head: h)
                if aligned[h] {
                    for j in 0..<n { scores[j] = total[j] * scale }
                } else {
                    index(storage)
                    let positions = storage.positions(head: h)
                    for j in 0..<n {
                        let p = positions[j]
                        scores[j] = (slotOfPosition[p].map { total[$0] } ?? elsewhere[p] ?? 0) * scale
                    }
                }
            }
        }
    }
}
