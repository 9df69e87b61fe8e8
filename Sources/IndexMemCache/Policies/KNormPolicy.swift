// IndexMem — cache policies. Apache-2.0.
//
// Key norm (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for KV Cache
// Compression", arXiv:2406.11430): keys with a low L2 norm attract high attention, so keep
// the lowest norms. Score = -||k|| (RoPE preserves the norm, so rotated keys serve).
// Signals: none beyond the keys. Cost: O(headDimension) per entry, no attention needed.

// MARK: - knorm

public struct KNormPolicy: EvictionPolicy {
    public static let definition = PolicyDefinition(name: "knorm", summary: "lowest key norm", keeps: "lowest key L2 norm") {
        _ throws(PolicyError) in ResolvedPolicy(scorer: KNormPolicy())
    }

    public init() {}
    public var spec: String { "knorm" }
    public var signals: PolicySignals { [] }

    public func makeScorer(for layer: LayerContext) -> any LayerScorer {
        Scorer(kvHeads: layer.shape.kvHeads, headDimension: layer.shape.headDimension)
    }

    final class Scorer: LayerScorer {
        let kvHeads: Int, headDimension: Int
        init(kvHeads: Int, headDimension: Int) {
            self.kvHeads = kvHeads
            self.headDimension = headDimension
        }

        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head), d = headDimension
            for (t, slot) in slots.enumerated() {
                let k = batch.keys + (t * kvHeads + head) * d
                var sum: Float = 0
                for i in 0..<d { sum += k[i] * k[i] }
                scores[slot] = -sum.squareRoot()
            }
        }
    }
}
