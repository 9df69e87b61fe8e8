// IndexMem — cache tests. Apache-2.0.
//
// The bounded cache's promises on synthetic streams: never above budget, sinks and window
// kept, every evicted entry handed over exactly once, and with no eviction (or with a
// receiver that remembers everything exactly) the full cache's attention.

import Foundation
import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

let pool2 = ThreadPool(threadCount: 2)
let testShape = AttentionShape(queryHeads: 4, kvHeads: 2, headDimension: 16, scale: 0.25)
let scoringPolicies: [any EvictionPolicy] = [WindowPolicy(), H2OPolicy(), TOVAPolicy(), SnapKVPolicy(window: 8, kernel: 3),
                                             KNormPolicy(), RandomPolicy(seed: 3)]
let policyNames = scoringPolicies.map(\.spec)

func policy(named spec: String) -> any EvictionPolicy { scoringPolicies.first { $0.spec == spec }! }

@Suite("Bounded KV cache")
struct BoundedCacheTests {
    @Test("never holds more than budget after a block; peak bytes <= (budget + chunk) entries", arguments: policyNames)
    func bounded(spec: String) throws {
        let budget = 40, chunk = 16
        let cache = BoundedLayerCache(layer: .standalone(testShape), budget: budget, capacity: budget + chunk,
                                      selector: BudgetSelector(sinks: 4, window: 8), policy: policy(named: spec))
        var stream = SyntheticStream(shape: testShape, seed: 1)
        for step in 0..<30 {
            cache.run(stream.next(step < 10 ? chunk : 1), pool: pool2)
            #expect(cache.storage.counts.allSatisfy { $0 <= budget })
        }
        let entryBytes = testShape.kvHeads * testShape.headDimension * 4
        #expect(cache.peakBytes <= (budget + chunk) * entryBytes)
        #expect(cache.peakBytes == (budget + chunk) * entryBytes)  // reached: 3 chunks exceed the budget
        for h in 0..<testShape.kvHeads {
            let held = cache.storage.heldPositions(head: h)
            #expect(Array(held.prefix(4)) == [0, 1, 2, 3], "sinks kept")
            let newest = stream.position - 1
            #expect(Array(held.suffix(8)) == Array((newest - 7)...newest), "recent window kept")
        }
    }

    @Test("every evicted entry reaches the receiver exactly once, with its key and value", arguments: policyNames)
    func receiverExactlyOnce(spec: String) throws {
        let receiver = RecordingReceiver(headDimension: testShape.headDimension)
        let cache = BoundedLayerCache(layer: .standalone(testShape), budget: 24, capacity: 24 + 8,
                                      selector: BudgetSelector(sinks: 2, window: 4), policy: policy(named: spec), receiver: receiver)
        var stream = SyntheticStream(shape: testShape, seed: 2)
        var blocks: [SyntheticStream.Block] = []
        for step in 0..<20 {
            let block = stream.next(step % 3 == 0 ? 8 : 1)
            blocks.append(block)
            cache.run(block, pool: pool2)
        }
        let total = Int(stream.position)
        for h in 0..<testShape.kvHeads {
            let evicted = receiver.received.filter { $0.head == h }.map(\.position)
            let kept = cache.storage.heldPositions(head: h)
            #expect(Set(evicted).count == evicted.count, "no entry evicted twice")
            #expect(Set(evicted).isDisjoint(with: kept))
            #expect((evicted + kept).sorted() == (0..<Int32(total)).map { $0 })
        }
        // The receiver sees the stored (f16) key and value of the entry.
        let d = testShape.headDimension
        for r in receiver.received.prefix(20) {
            let block = blocks.first { $0.positions.contains(r.position) }!
            let t = block.positions.firstIndex(of: r.position)!
            let base = (t * testShape.kvHeads + r.head) * d
            #expect(r.key == block.keys[base..<(base + d)].map { Float(Float16($0)) })
            #expect(r.value == block.values[base..<(base + d)].map { Float(Float16($0)) })
        }
    }

    @Test("with a budget the stream never reaches, every policy computes the full cache's attention bit for bit",
          arguments: policyNames, [BoundedLayerCache.EvictionTiming.afterEveryBlock, .onCompress])
    func noEvictionEqualsFull(spec: String, timing: BoundedLayerCache.EvictionTiming) throws {
        for window in [nil, 12] as [Int?] {
            var shape = testShape
            shape.slidingWindow = window
            let full = FullLayerCache(shape: shape, capacity: 256)
            let bounded = BoundedLayerCache(layer: .standalone(shape), budget: 200, capacity: 256,
                                            selector: BudgetSelector(sinks: 4, window: 8), policy: policy(named: spec), timing: timing)
            var stream = SyntheticStream(shape: shape, seed: 3)
            for step in 0..<12 {
                let block = stream.next(step < 4 ? 16 : 1)
                #expect(full.run(block, pool: pool2) == bounded.run(block, pool: pool2), "step \(step), window \(String(describing: window))")
            }
            bounded.compress()
            #expect(bounded.evictions == 0)
        }
    }

    @Test("a receiver that remembers evicted entries exactly, merged into the softmax, reproduces full attention")
    func exactMemoryEqualsFull() throws {
        let receiver = ExactMemoryReceiver(kvHeads: testShape.kvHeads, headDimension: testShape.headDimension)
        let full = FullLayerCache(shape: testShape, capacity: 512)
        let bounded = BoundedLayerCache(layer: .standalone(testShape), budget: 24, capacity: 24 + 16,
                                        selector: BudgetSelector(sinks: 2, window: 4), policy: H2OPolicy(), receiver: receiver)
        var stream = SyntheticStream(shape: testShape, seed: 4)
        var worst: Float = 0
        for step in 0..<20 {
            let block = stream.next(step < 6 ? 16 : 1)
            let a = full.run(block, pool: pool2), b = bounded.run(block, pool: pool2)
            for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
        }
        #expect(bounded.evictions > 100)
        // Both sides round probabilities to f16, normalised over different sets: ~1e-3.
        #expect(worst < 3e-3, "max |full - bounded with exact memory| = \(worst)")
    }

    @Test("a residual readout is added to the attention output; a zero readout changes nothing")
    func residualReadout() throws {
        final class ConstantReadout: EvictedEntryReceiver {
            let value: Float
            init(_ value: Float) { self.value = value }
            var readoutForm: ReadoutForm { .residual }
            var bytes: Int { 0 }
            func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {}
            func addReadout(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                            kept: (max: Float, sum: Double), output: UnsafeMutablePointer<Float>) {
                for i in 0..<16 { output[i] += value }
            }
            func reset() {}
        }
        func outputs(_ receiver: any EvictedEntryReceiver) -> [Float] {
            let cache = BoundedLayerCache(layer: .standalone(testShape), budget: 20, capacity: 36,
                                          selector: BudgetSelector(sinks: 2, window: 4), policy: WindowPolicy(), receiver: receiver)
            var stream = SyntheticStream(shape: testShape, seed: 5)
            var out: [Float] = []
            for _ in 0..<4 { out = cache.run(stream.next(16), pool: pool2) }
            return out
        }
        let plain = outputs(DiscardingReceiver())
        #expect(outputs(ConstantReadout(0)) == plain)
        let shifted = outputs(ConstantReadout(0.5))
        #expect(zip(shifted, plain).allSatisfy { $0 == $1 + 0.5 })
    }
}
