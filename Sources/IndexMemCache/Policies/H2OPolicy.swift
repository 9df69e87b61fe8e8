// IndexMem — cache policies. Apache-2.0.
//
// H2O (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of
// Large Language Models", arXiv:2306.14048): an entry's score is the attention it has
// received so far, accumulated over every query and every head of its KV group.
// Signals: attention of all queries. Cost: O(entries) per query.
//
// Choices, checked against the paper's code (FMInference/H2O, `h2o_hf/utils_hh`: per head,
// `attn_weights.sum(0).sum(1)` added to the previous scores, one top-k per head):
// * Accumulated, not normalised: the plain sum of the attention weights over every query so
//   far (the paper's rule). Earlier entries are seen by more queries and so collect more.
// * Per head: each head keeps its own heavy hitters (the paper's models have one query head
//   per KV head). With GQA the KV head's group of query heads shares one score, their sum,
//   as kvpress shares one per group (its mean: the same ranking).
// * The recent window the paper keeps inside the budget is the selector's window; sinks are
//   the selector's too (the paper has none).
// kvpress has no H2O press. Its nearest, ObservedAttentionPress (prefill only, eager
// attention), averages instead of summing: each key's attention summed over the prompt's
// queries is divided by the number of queries that can see it (removing the bias towards
// early positions), then averaged over the group's query heads. We keep the paper's sum.
// Deviation: in bounded mode the sum covers the queries of blocks seen so far (the paper
// decodes token by token, which is the same sum).

// MARK: - h2o

public struct H2OPolicy: EvictionPolicy {
    public static let definition = PolicyDefinition(
        name: "h2o", summary: "accumulated attention (H2O)",
        keeps: "most attention accumulated so far: summed, not averaged, over every query and the KV head's query-head group (H2O's rule; kvpress's ObservedAttentionPress averages)",
        readsAttention: "all queries"
    ) { _ throws(PolicyError) in ResolvedPolicy(scorer: H2OPolicy()) }

    public init() {}
    public var spec: String { "h2o" }
    public var signals: PolicySignals { .attention }
    public var attentionQueries: Int { .max }

    public func makeScorer(for layer: LayerContext) -> any LayerScorer { Scorer() }

    final class Scorer: LayerScorer {
        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head)
            for slot in slots { scores[slot] = 0 }
        }

        func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {
            let scores = storage.scores(head: head)
            for j in 0..<storage.counts[head] { scores[j] += attention[j] }
        }
    }
}
