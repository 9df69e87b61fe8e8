// IndexMem — cache tests. Apache-2.0.
//
// Each policy keeps what its paper prescribes, on hand-built keys and queries: one head of
// dimension 8, so that which entries a query attends to is set by construction.

import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

let unitShape = AttentionShape(queryHeads: 1, kvHeads: 1, headDimension: 8, scale: 1)

/// A block whose entry `i` has key `keys(position)` and whose queries are `queries(t)`.
func handBuilt(positions: Range<Int>, key: (Int) -> [Float], query: (Int) -> [Float]) -> SyntheticStream.Block {
    SyntheticStream.Block(
        keys: positions.flatMap(key), values: positions.flatMap { p in (0..<8).map { Float(p * 8 + $0) / 100 } },
        queries: positions.indices.flatMap { query(positions.lowerBound + $0) },
        hidden: positions.flatMap { _ in [Float](repeating: 0, count: SyntheticStream.hiddenDimension) },
        positions: positions.map(Int32.init))
}

func axis(_ i: Int, _ length: Float) -> [Float] { (0..<8).map { $0 == i ? length : 0 } }

func cache(_ policy: any EvictionPolicy, budget: Int, capacity: Int = 64, sinks: Int = 1, window: Int = 2) -> BoundedLayerCache {
    BoundedLayerCache(layer: .standalone(unitShape), budget: budget, capacity: capacity,
                      selector: BudgetSelector(sinks: sinks, window: window), policy: policy)
}

@Suite("Policy choices on hand-built patterns")
struct PolicyChoiceTests {
    // Entries 0..<16; "heavy" positions have keys along axis 0, the rest along axis 1.
    static let heavy: Set<Int> = [3, 7, 9, 12]
    static func key(_ p: Int) -> [Float] { heavy.contains(p) ? axis(0, 1) : axis(1, 1) }

    @Test("window (StreamingLLM) keeps the sinks and the newest entries")
    func window() {
        let c = cache(WindowPolicy(), budget: 6)
        c.run(handBuilt(positions: 0..<16, key: Self.key, query: { _ in axis(0, 1) }), pool: pool2)
        #expect(c.storage.heldPositions(head: 0) == [0, 11, 12, 13, 14, 15])
    }

    @Test("h2o keeps the entries that accumulated the most attention")
    func h2o() {
        let c = cache(H2OPolicy(), budget: 7)
        // Every query looks along axis 0: the heavy entries collect attention.
        c.run(handBuilt(positions: 0..<16, key: Self.key, query: { _ in axis(0, 8) }), pool: pool2)
        #expect(c.storage.heldPositions(head: 0) == [0, 3, 7, 9, 12, 14, 15])
    }

    @Test("tova keeps what the newest query attends to, not what earlier queries did")
    func tova() {
        let c = cache(TOVAPolicy(), budget: 5)
        // Earlier queries look along axis 0 (heavy entries); the last one along axis 1.
        let block = handBuilt(positions: 0..<16, key: { p in Self.heavy.contains(p) ? axis(0, 1) : (p == 5 || p == 10 ? axis(1, 1) : axis(2, 1)) },
                              query: { t in t == 15 ? axis(1, 8) : axis(0, 8) })
        c.run(block, pool: pool2)
        #expect(c.storage.heldPositions(head: 0) == [0, 5, 10, 14, 15])
        let h = cache(H2OPolicy(), budget: 5)
        h.run(block, pool: pool2)
        #expect(h.storage.heldPositions(head: 0) != [0, 5, 10, 14, 15], "h2o, by contrast, remembers the earlier queries")
    }

    @Test("snapkv keeps what the observation window attends to, with its neighbours (pooling)")
    func snapkv() {
        let c = cache(SnapKVPolicy(window: 4, kernel: 3), budget: 6)
        // The last 4 queries look at entry 6 (axis 2); earlier queries at the heavy entries.
        let block = handBuilt(positions: 0..<16, key: { p in p == 6 ? axis(2, 1) : Self.key(p) },
                              query: { t in t >= 12 ? axis(2, 8) : axis(0, 8) })
        c.run(block, pool: pool2)
        #expect(c.storage.heldPositions(head: 0) == [0, 5, 6, 7, 14, 15])
    }

    @Test("knorm keeps the keys with the lowest L2 norm")
    func knorm() {
        let c = cache(KNormPolicy(), budget: 6)
        c.run(handBuilt(positions: 0..<16, key: { p in axis(p % 8, [5, 1, 9, 2, 7, 8, 3, 6, 4, 10, 11, 0.5, 12, 13, 1.5, 14][p]) },
                        query: { _ in axis(0, 1) }), pool: pool2)
        #expect(c.storage.heldPositions(head: 0) == [0, 1, 3, 11, 14, 15])
    }

    @Test("random is deterministic under its seed and differs across seeds")
    func random() {
        func kept(_ seed: UInt64) -> [Int32] {
            let c = cache(RandomPolicy(seed: seed), budget: 6)
            c.run(handBuilt(positions: 0..<32, key: Self.key, query: { _ in axis(0, 1) }), pool: pool2)
            return c.storage.heldPositions(head: 0)
        }
        #expect(kept(1) == kept(1))
        #expect(kept(1) != kept(2))
    }

    @Test("the selector evicts the lowest scores, older first among equals, never sinks or the window")
    func selector() {
        let positions: [Int32] = [0, 1, 2, 3, 4, 5, 6, 7]
        let scores: [Float] = [-9, 5, 1, 1, 0, 2, -9, -9]
        var scratch = [Int](repeating: 0, count: 8), evict = [Int](repeating: 0, count: 8)
        let n = BudgetSelector(sinks: 1, window: 2).select(count: 8, budget: 5, newest: 7, positions: positions, scores: scores,
                                                            scratch: &scratch, evict: &evict)
        #expect(Array(evict.prefix(n)) == [2, 3, 4])
    }

    @Test("PyramidKV budgets fall with depth, average the budget and never go below sinks + window")
    func pyramid() {
        let schedule = BudgetSchedule.pyramid(budget: 256, beta: 20)
        let budgets = (0..<30).map { schedule.budget(layer: $0, layerCount: 30, sinks: 4, window: 64) }
        #expect(zip(budgets, budgets.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(budgets.first! > 256 && budgets.last! < 256)
        let mean = Double(budgets.reduce(0, +)) / 30
        #expect(abs(mean - 256) <= 1)
        let tight = BudgetSchedule.pyramid(budget: 70, beta: 20)
        #expect((0..<30).allSatisfy { tight.budget(layer: $0, layerCount: 30, sinks: 4, window: 64) >= 68 })
    }
}
