// IndexMem — cache policies. Apache-2.0.
//
// SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You are Looking for Before Generation",
// arXiv:2404.14469): score entries by the attention the last `window` queries (the
// observation window) pay them, averaged over those queries and smoothed by a 1-D average
// pool of width `kernel` over positions (kvpress's SnapKVPress: window 64, kernel 5).
// Signals: attention of the newest `window` queries of each block. Cost: O(entries x window)
// per block plus a sort by position for the pooling.
// Deviations: the paper compresses once after the prompt; in bounded mode every block
// re-scores with its own last queries. While decoding (one query per block) the score is an
// exponential moving average of the new query's attention with weight 1/window, without
// pooling, so that decoding costs O(entries) per token. With GQA the group's heads are summed
// (kvpress averages them per group, following SnapKV's issue 22: the same ranking); each KV
// head keeps its own positions, as in kvpress. kvpress pools only the entries before the
// observation window and always keeps that window; here the pooling runs over every entry
// in position order and the selector's `--window` (default 64, kvpress's window) is kept.

// MARK: - snapkv

public struct SnapKVPolicy: EvictionPolicy {
    /// kvpress's SnapKVPress defaults (the paper's observation window and pooling kernel).
    public static let defaultWindow = 64
    public static let defaultKernel = 5

    public static let definition = PolicyDefinition(
        name: "snapkv", summary: "pooled attention of an observation window (SnapKV)",
        keeps: "pooled attention of the last `window` queries (SnapKV), per KV head over its query-head group (as kvpress)",
        readsAttention: "last `window` queries",
        options: [
            PolicyOption("window", .integer(default: defaultWindow, range: 1...4096), help: "queries that observe"),
            PolicyOption("kernel", .integer(default: defaultKernel, range: 1...63), help: "width of the pooling over positions"),
        ]
    ) { arguments throws(PolicyError) in
        ResolvedPolicy(scorer: SnapKVPolicy(window: try arguments.int("window"), kernel: try arguments.int("kernel")))
    }

    public let window: Int
    public let kernel: Int
    public init(window: Int = SnapKVPolicy.defaultWindow, kernel: Int = SnapKVPolicy.defaultKernel) {
        self.window = window
        self.kernel = kernel
    }
    public var spec: String {
        window == Self.defaultWindow && kernel == Self.defaultKernel ? "snapkv" : "snapkv:window=\(window),kernel=\(kernel)"
    }
    public var signals: PolicySignals { .attention }
    public var attentionQueries: Int { window }

    public func makeScorer(for layer: LayerContext) -> any LayerScorer {
        Scorer(window: window, kernel: kernel)
    }

    final class Scorer: LayerScorer {
        let window: Int, kernel: Int
        var order: [Int] = []
        var pooled: [Float] = []
        init(window: Int, kernel: Int) {
            self.window = window
            self.kernel = kernel
        }

        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head)
            for slot in slots { scores[slot] = 0 }
        }

        func refresh(head: Int, attention: UnsafePointer<Float>, queries: Int, storage: KVStorage) {
            let n = storage.counts[head], scores = storage.scores(head: head)
            guard queries > 0 else { return }
            if queries == 1 && window > 1 {
                let w = 1 / Float(window)
                for j in 0..<n { scores[j] = scores[j] * (1 - w) + attention[j] * w }
                return
            }
            // Average over the window's queries, pooled over neighbouring positions.
            let positions = storage.positions(head: head)
            order = Array(0..<n)
            order.sort { positions[$0] < positions[$1] }
            pooled = [Float](repeating: 0, count: n)
            let half = kernel / 2, inv = 1 / Float(queries)
            for (rank, slot) in order.enumerated() {
                var sum: Float = 0
                // Average pooling with zero padding, as torch's avg_pool1d(count_include_pad=True).
                for r in max(0, rank - half)...min(n - 1, rank + half) { sum += attention[order[r]] }
                pooled[slot] = sum * inv / Float(kernel)
            }
            scores.update(from: pooled, count: n)
        }
    }
}
