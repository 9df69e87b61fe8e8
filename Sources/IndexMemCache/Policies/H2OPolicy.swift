// IndexMem — cache policies. Apache-2.0.
//
// H2O (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of
// Large Language Models", arXiv:2306.14048): an entry's score is the attention it has
// received so far, accumulated over every query and every head of its KV group.
// Signals: attention of all queries. Cost: O(entries) per query.
// Deviation: the paper keeps a recent window inside the budget as we do (the selector's
// window); with GQA the group's heads share one score (their sum), as kvpress does.

// MARK: - h2o

public struct H2OPolicy: EvictionPolicy {
    public init() {}
    public var spec: String { "h2o" }
    public var signals: PolicySignals { .attention }
    public var attentionQueries: Int { .max }

    public func makeScorer(layer: Int, layerCount: Int, shape: AttentionShape) -> any LayerScorer { Scorer() }

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
