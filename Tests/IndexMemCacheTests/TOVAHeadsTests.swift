// IndexMem — cache tests. Apache-2.0.
//
// TOVA's two head choices: `heads=layer` (the paper's and kvpress's: the newest query's
// attention averaged over all query heads of the layer, one score per position shared by
// every KV head) and `heads=group` (each KV head scored by its own GQA group, the engine's
// earlier behaviour, reproduced exactly).

import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

/// The TOVA scorer as it was before `heads` existed: each KV head's score is its group's
/// summed attention from the newest query.
struct LegacyTOVAPolicy: EvictionPolicy {
    var spec: String { "legacy-tova" }
    var signals: PolicySignals { .attention }
    var attentionQueries: Int { 1 }
    func makeScorer(for layer: LayerContext) -> any LayerScorer { Scorer() }

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

extension KVStorage {
    /// Slot-ordered (position, score) pairs of a head.
    func slots(head: Int) -> [(Int32, Float)] {
        (0..<counts[head]).map { (positions(head: head)[$0], scores(head: head)[$0]) }
    }

    /// Score of each held position of a head.
    func scoresByPosition(head: Int) -> [Int32: Float] {
        Dictionary(uniqueKeysWithValues: slots(head: head))
    }
}

@Suite("TOVA: layer-averaged or per-group scores")
struct TOVAHeadsTests {
    static let budget = 40, chunk = 16

    static func boundedCache(_ policy: any EvictionPolicy, shape: AttentionShape = testShape,
                             timing: BoundedLayerCache.EvictionTiming = .afterEveryBlock) -> BoundedLayerCache {
        BoundedLayerCache(layer: .standalone(shape), budget: budget, capacity: timing == .afterEveryBlock ? budget + chunk : 512,
                          selector: BudgetSelector(sinks: 4, window: 8), policy: policy, timing: timing)
    }

    @Test("heads=group reproduces the earlier per-group scorer exactly: outputs, positions and scores, prefill and decoding")
    func groupIsTheEarlierBehaviour() {
        for timing in [BoundedLayerCache.EvictionTiming.afterEveryBlock, .onCompress] {
            let new = Self.boundedCache(TOVAPolicy(heads: .group), timing: timing)
            let old = Self.boundedCache(LegacyTOVAPolicy(), timing: timing)
            var stream = SyntheticStream(shape: testShape, seed: 11)
            var headsDiffered = false
            for step in 0..<40 {
                let block = stream.next(step < 8 ? Self.chunk : 1)
                #expect(new.run(block, pool: pool2) == old.run(block, pool: pool2), "step \(step)")
                if timing == .onCompress && step == 7 { new.compress(); old.compress() }
                for h in 0..<testShape.kvHeads {
                    #expect(new.storage.slots(head: h).elementsEqual(old.storage.slots(head: h)) { $0 == $1 }, "step \(step), head \(h)")
                }
                headsDiffered = headsDiffered || new.storage.heldPositions(head: 0) != new.storage.heldPositions(head: 1)
            }
            #expect(new.evictions == old.evictions && new.evictions > 0)
            #expect(headsDiffered, "per-group scores let the KV heads keep different positions")
        }
    }

    @Test("heads=layer shares one score per position across KV heads: every head keeps the same positions, while decoding too")
    func layerSharesPositions() {
        for timing in [BoundedLayerCache.EvictionTiming.afterEveryBlock, .onCompress] {
            let c = Self.boundedCache(TOVAPolicy(heads: .layer), timing: timing)
            var stream = SyntheticStream(shape: testShape, seed: 11)
            for step in 0..<40 {
                c.run(stream.next(step < 8 ? Self.chunk : 1), pool: pool2)
                if timing == .onCompress && step == 7 { c.compress() }
                let reference = c.storage.scoresByPosition(head: 0)
                for h in 1..<testShape.kvHeads {
                    #expect(c.storage.heldPositions(head: h) == c.storage.heldPositions(head: 0), "step \(step), head \(h)")
                    #expect(c.storage.scoresByPosition(head: h) == reference, "step \(step), head \(h)")
                }
                if timing == .afterEveryBlock || step == 7 { #expect(c.storage.counts.allSatisfy { $0 <= Self.budget }, "step \(step)") }
            }
            #expect(c.evictions > 0)
        }
    }

    @Test("heads=layer scores the mean over all query heads of the per-group sums")
    func layerIsTheMeanOverHeads() {
        let shape = AttentionShape(queryHeads: 4, kvHeads: 2, headDimension: 16, scale: 0.25)
        let layer = Self.boundedCache(TOVAPolicy(heads: .layer), shape: shape, timing: .onCompress)
        let group = Self.boundedCache(TOVAPolicy(heads: .group), shape: shape, timing: .onCompress)
        var stream = SyntheticStream(shape: shape, seed: 5)
        for _ in 0..<3 {
            let block = stream.next(Self.chunk)
            layer.run(block, pool: pool2)
            group.run(block, pool: pool2)
        }
        let a = group.storage.scoresByPosition(head: 0), b = group.storage.scoresByPosition(head: 1)
        let expected = a.merging(b, uniquingKeysWith: +).mapValues { $0 / 4 }
        for h in 0..<shape.kvHeads { #expect(layer.storage.scoresByPosition(head: h) == expected) }
        // The newest query's weights sum to one per query head, so the layer mean does too.
        #expect(abs(expected.values.reduce(0, +) - 1) < 1e-4)
    }

    /// Two KV heads, one query head each: the newest query of head 0 looks hard at position 5,
    /// that of head 1 less hard at position 10; earlier queries are zero (uniform attention).
    static func twoHeadBlock() -> SyntheticStream.Block {
        let positions = 0..<16
        func key0(_ p: Int) -> [Float] { p == 5 ? axis(1, 1) : axis(2, 1) }
        func key1(_ p: Int) -> [Float] { p == 10 ? axis(3, 1) : axis(2, 1) }
        let zero = [Float](repeating: 0, count: 8)
        return SyntheticStream.Block(
            keys: positions.flatMap { key0($0) + key1($0) },
            values: positions.flatMap { p in (0..<16).map { Float(p * 16 + $0) / 100 } },
            queries: positions.flatMap { t in t == 15 ? axis(1, 8) + axis(3, 4) : zero + zero },
            hidden: positions.flatMap { _ in [Float](repeating: 0, count: SyntheticStream.hiddenDimension) },
            positions: positions.map(Int32.init))
    }

    @Test("one free slot: heads=group keeps each head's own favourite, heads=layer the layer's for both heads")
    func handBuiltTwoHeads() {
        let shape = AttentionShape(queryHeads: 2, kvHeads: 2, headDimension: 8, scale: 1)
        func kept(_ heads: TOVAPolicy.Heads) -> [[Int32]] {
            let c = BoundedLayerCache(layer: .standalone(shape), budget: 4, capacity: 32,
                                      selector: BudgetSelector(sinks: 1, window: 2), policy: TOVAPolicy(heads: heads))
            c.run(Self.twoHeadBlock(), pool: pool2)
            return (0..<2).map { c.storage.heldPositions(head: $0) }
        }
        #expect(kept(.group) == [[0, 5, 14, 15], [0, 10, 14, 15]])
        // Layer means: position 5 about (0.995 + 0.014) / 2, position 10 about (0.78 + 0.0003) / 2.
        #expect(kept(.layer) == [[0, 5, 14, 15], [0, 5, 14, 15]])
    }

    @Test("heads=layer shares by position even when heads hold different positions in different slots")
    func layerSharesByPositionNotSlot() {
        let shape = AttentionShape(queryHeads: 4, kvHeads: 2, headDimension: 8, scale: 1)
        let storage = KVStorage(kvHeads: 2, headDimension: 8, capacity: 32)
        let zero = [Float](repeating: 0, count: 8)
        for p in [0, 1, 2, 3] as [Int32] { storage.append(head: 0, key: zero, value: zero, position: p) }
        for p in [0, 2, 1, 4] as [Int32] { storage.append(head: 1, key: zero, value: zero, position: p) }
        let scorer = TOVAPolicy(heads: .layer).makeScorer(for: .standalone(shape))
        let a: [Float] = [0.5, 0.25, 0.125, 0.0625], b: [Float] = [1, 2, 4, 8]
        scorer.refresh(head: 0, attention: a, queries: 1, storage: storage)
        scorer.refresh(head: 1, attention: b, queries: 1, storage: storage)
        let byPosition: [Int32: Float] = [0: (0.5 + 1) / 4, 1: (0.25 + 4) / 4, 2: (0.125 + 2) / 4, 3: 0.0625 / 4, 4: 8.0 / 4]
        #expect(storage.scoresByPosition(head: 0) == byPosition.filter { $0.key != 4 })
        #expect(storage.scoresByPosition(head: 1) == byPosition.filter { $0.key != 3 })
        // A later round with aligned heads uses the fast path again and forgets the old index.
        let c = Array(repeating: Float(0.5), count: 4)
        storage.truncate(head: 1, to: 0)
        for p in [0, 1, 2, 3] as [Int32] { storage.append(head: 1, key: zero, value: zero, position: p) }
        scorer.refresh(head: 0, attention: a, queries: 1, storage: storage)
        scorer.refresh(head: 1, attention: c, queries: 1, storage: storage)
        let aligned = Dictionary(uniqueKeysWithValues: (0..<4).map { (Int32($0), (a[$0] + 0.5) / 4) })
        #expect(storage.scoresByPosition(head: 0) == aligned && storage.scoresByPosition(head: 1) == aligned)
    }

    @Test("specs: tova is heads=layer; heads=group is named; a bad value is refused")
    func specs() throws {
        #expect(try PolicyRegistry.resolve("tova").spec == "tova")
        #expect(try PolicyRegistry.resolve("tova:heads=layer").spec == "tova")
        #expect(try PolicyRegistry.resolve("tova:heads=group").spec == "tova:heads=group")
        #expect((try PolicyRegistry.resolve("tova").policy as? TOVAPolicy)?.heads == .layer)
        #expect((try PolicyRegistry.resolve("tova:heads=group").policy as? TOVAPolicy)?.heads == .group)
        #expect((try PolicyRegistry.resolve("pyramid:scorer=tova").policy as? TOVAPolicy)?.heads == .layer)
        #expect(throws: PolicyError.invalidValue(policy: "tova", option: "heads", value: "kv", expected: "layer or group")) {
            try PolicyRegistry.resolve("tova:heads=kv")
        }
        #expect(throws: PolicyError.self) { try PolicyRegistry.resolve("tova:window=4") }
    }
}
