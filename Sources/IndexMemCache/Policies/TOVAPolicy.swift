// IndexMem — cache policies. Apache-2.0.
//
// TOVA (Oren et al. 2024, "Transformers are Multi-State RNNs", arXiv:2401.06104): evict the
// entry the current query attends to least, attention averaged over heads.
// Signals: attention of the newest query of each block. Cost: O(entries) per block.
// Deviation: during chunked prefill the "current query" is the block's last token (the paper
// decodes token by token); with GQA the score is the group's summed attention.

// MARK: - tova

public struct TOVAPolicy: EvictionPolicy {
    public init() {}
    public var spec: String { "tova" }
    public var signals: PolicySignals { .attention }
    public var attentionQueries: Int { 1 }

    public func makeScorer(layer: Int, layerCount: Int, shape: AttentionShape) -> any LayerScorer { Scorer() }

    final class Scorer: LayerScorer {
        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head)
            for slot in slots { scores[slot] = 0 }
        }

        func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {
            storage.scores(head: head).update(from: attention, count: storage.counts[head])
        }
    }
}
