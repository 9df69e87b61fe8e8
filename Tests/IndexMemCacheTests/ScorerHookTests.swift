// IndexMem — cache tests. Apache-2.0.
//
// What the learned indexer needs from the cache, proven with a small test scorer: a side
// vector per entry written at insertion (from the block's hidden states) that travels with
// the entry through evictions, and a re-scoring of every entry once per block from that
// block's hidden states.

import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

/// Side vector = the entry's hidden state (2 floats); score = side . mean(hidden of the newest block).
struct HiddenDotPolicy: EvictionPolicy {
    var spec: String { "test-hidden-dot" }
    var signals: PolicySignals { .hiddenStates }
    var sideDimension: Int { 2 }
    func makeScorer(for layer: LayerContext) -> any LayerScorer { Scorer() }

    final class Scorer: LayerScorer {
        var blockRefreshes = 0
        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            for (t, slot) in slots.enumerated() {
                let h = batch.hiddenStates! + t * batch.hiddenDimension
                storage.side(head: head, slot: slot).update(from: h, count: 2)
            }
        }
        func refresh(block batch: AppendBatch, head: Int, storage: KVStorage) {
            blockRefreshes += 1
            var mean: (Float, Float) = (0, 0)
            for t in 0..<batch.tokens {
                mean.0 += batch.hiddenStates![t * batch.hiddenDimension]
                mean.1 += batch.hiddenStates![t * batch.hiddenDimension + 1]
            }
            let scores = storage.scores(head: head)
            for slot in 0..<storage.counts[head] {
                let s = storage.side(head: head, slot: slot)
                scores[slot] = s[0] * mean.0 + s[1] * mean.1
            }
        }
    }
}

@Suite("Scorer hooks for the learned indexer")
struct ScorerHookTests {
    @Test("side vectors follow their entries through evictions; blocks re-score every entry from hidden states")
    func sideVectorsAndBlockRefresh() throws {
        let policy = HiddenDotPolicy()
        let cache = BoundedLayerCache(layer: .standalone(unitShape), budget: 8, capacity: 16,
                                      selector: BudgetSelector(sinks: 1, window: 2), policy: policy)
        // Hidden state of position p: (p, -p) for even p, (-p, p) for odd p.
        func block(_ range: Range<Int>, direction: Float) -> SyntheticStream.Block {
            var b = handBuilt(positions: range, key: { _ in axis(0, 1) }, query: { _ in axis(0, 1) })
            b.hidden = range.flatMap { p -> [Float] in
                let h: [Float] = p % 2 == 0 ? [Float(p), -Float(p)] : [-Float(p), Float(p)]
                return h + [Float](repeating: 0, count: SyntheticStream.hiddenDimension - 2)
            }
            // The block's mean hidden state decides which entries score high: scale it.
            b.hidden = b.hidden.enumerated().map { i, v in i % SyntheticStream.hiddenDimension < 2 ? v * direction : v }
            return b
        }
        cache.run(block(0..<8, direction: 1), pool: pool2)
        // Block 8..<16 flips the signs of its hidden states.
        cache.run(block(8..<16, direction: -1), pool: pool2)
        let scorer = cache.scorer as! HiddenDotPolicy.Scorer
        #expect(scorer.blockRefreshes == 2)
        let held = cache.storage.heldPositions(head: 0)
        #expect(held.count == 8)
        // The second block's summed hidden state is (4, -4): entries of the first block score
        // 8p when even, entries of the second 8p when odd. Kept: sink 0, window 14 and 15, and
        // the five best of the rest: 13, 11, 9 (104, 88, 72), 6 and 4 (48, 32).
        #expect(held == [0, 4, 6, 9, 11, 13, 14, 15])
        // Every kept entry still carries the side vector written when it entered.
        for slot in 0..<cache.storage.counts[0] {
            let p = Int(cache.storage.positions(head: 0)[slot])
            let s = cache.storage.side(head: 0, slot: slot)
            let sign: Float = p < 8 ? 1 : -1
            let expected: [Float] = p % 2 == 0 ? [Float(p) * sign, -Float(p) * sign] : [-Float(p) * sign, Float(p) * sign]
            #expect([s[0], s[1]] == expected, "side vector of position \(p)")
        }
    }
}
