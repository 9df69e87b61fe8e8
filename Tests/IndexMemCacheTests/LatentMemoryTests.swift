// IndexMem — cache tests. Apache-2.0.

import Foundation
import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

@Suite("Latent memory")
struct LatentMemoryTests {
    /// W = the first `rank` coordinate axes (orthonormal rows), with a gate and tilt.
    static func parameters(rank: Int = 4, gate: [Float]? = nil, tilt: Float = 1) -> LatentMemoryParameters {
        let d = testShape.headDimension, h = testShape.kvHeads
        var w = [Float](repeating: 0, count: h * rank * d)
        for head in 0..<h { for r in 0..<rank { w[(head * rank + r) * d + (r * 3 + head) % d] = 1 } }
        return LatentMemoryParameters(rank: rank, headDimension: d, kvHeads: h, projection: w,
                                      gate: gate.map { g in (0..<h).flatMap { _ in g } }, tilt: [Float](repeating: tilt, count: h))
    }

    func run(_ receiver: any EvictedEntryReceiver, budget: Int, stream: SyntheticStream = SyntheticStream(shape: testShape, seed: 8),
             transform: (inout SyntheticStream.Block) -> Void = { _ in }) -> [[Float]] {
        let cache = BoundedLayerCache(layer: .standalone(testShape), budget: budget, capacity: budget + 16,
                                      selector: BudgetSelector(sinks: 2, window: 4), policy: H2OPolicy(), receiver: receiver)
        var stream = stream
        return (0..<10).map { step in
            var block = stream.next(step < 5 ? 16 : 1)
            transform(&block)
            return cache.run(block, pool: pool2)
        }
    }

    @Test("while nothing has been evicted the output is exactly plain attention, for both readouts")
    func emptyMemoryIsPlainAttention() {
        for readout in [LatentMemory.Readout.gated, .softmax] {
            let memory = LatentMemory(parameters: Self.parameters(), readout: readout)
            #expect(run(memory, budget: 200) == run(DiscardingReceiver(), budget: 200))
            #expect(memory.absorbed.allSatisfy { $0 == 0 })
        }
    }

    @Test("a closed gate (g = 0) gives exactly plain attention even with a full memory")
    func closedGateIsPlainAttention() {
        let memory = LatentMemory(parameters: Self.parameters(gate: [-.infinity, 0, 0]))
        #expect(run(memory, budget: 24) == run(DiscardingReceiver(), budget: 24))
        #expect(memory.absorbed.allSatisfy { $0 > 0 })
    }

    @Test("with the closed-form gate the gated readout equals the softmax readout")
    func gatedClosedFormIsSoftmax() {
        let gated = run(LatentMemory(parameters: Self.parameters(), readout: .gated), budget: 24)
        let softmax = run(LatentMemory(parameters: Self.parameters(), readout: .softmax), budget: 24)
        let plain = run(DiscardingReceiver(), budget: 24)
        var largest: Float = 0, moved: Float = 0
        for (a, (b, c)) in zip(gated, zip(softmax, plain)) {
            for i in a.indices { largest = max(largest, abs(a[i] - b[i])); moved = max(moved, abs(a[i] - c[i])) }
        }
        #expect(largest < 1e-5)
        #expect(moved > 1e-3)
    }

    @Test("evicted entries that share one key are restored exactly: the bounded cache computes the full cache's attention")
    func identicalKeysAreExact() {
        // Half-exact data, every key the same: the moments are then exact (no spread, no covariance).
        let rounding: (inout SyntheticStream.Block) -> Void = { block in
            let d = testShape.headDimension
            let key = (0..<d).map { Float(Float16(Float($0 % 5) * 0.2 - 0.4)) }
            for i in block.keys.indices { block.keys[i] = key[i % d] }
            block.values = block.values.map { Float(Float16($0)) }
            block.queries = block.queries.map { Float(Float16($0)) }
        }
        let memory = LatentMemory(parameters: Self.parameters(), readout: .softmax)
        let bounded = run(memory, budget: 24, transform: rounding)
        var stream = SyntheticStream(shape: testShape, seed: 8)
        let full = FullLayerCache(shape: testShape, capacity: 128)
        let reference: [[Float]] = (0..<10).map { step in
            var block = stream.next(step < 5 ? 16 : 1)
            rounding(&block)
            return full.run(block, pool: pool2)
        }
        #expect(memory.absorbed.allSatisfy { $0 > 40 })
        var largest: Float = 0
        for (a, b) in zip(bounded, reference) { for i in a.indices { largest = max(largest, abs(a[i] - b[i])) } }
        // The kernels round attention probabilities to f16 before the value product (as llama.cpp does).
        #expect(largest < 5e-4)
        // Without the memory the same cache is far from it.
        let dropped = run(DiscardingReceiver(), budget: 24, transform: rounding)
        var gap: Float = 0
        for (a, b) in zip(dropped, reference) { for i in a.indices { gap = max(gap, abs(a[i] - b[i])) } }
        #expect(gap > 20 * largest)
    }

    @Test("the moment estimates follow the formulas (double-precision reference)")
    func matchesReference() {
        let p = Self.parameters(rank: 3)
        let memory = LatentMemory(parameters: p, readout: .gated)
        var rng = SplitMix64(seed: 3)
        let d = p.headDimension, head = 1, scale: Float = 0.3
        var keys: [[Float]] = [], values: [[Float]] = []
        for _ in 0..<9 {
            let k = rng.floats(d), v = rng.floats(d)
            keys.append(k); values.append(v)
            memory.absorb(head: head, key: k, value: v, position: 0)
        }
        let q = rng.floats(d)
        var mean = [Float](repeating: 0, count: d), covariance = mean
        let estimate = memory.estimate(head: head, query: q, scale: scale, mean: &mean, covariance: &covariance)
        let n = Double(keys.count), s = Double(scale)
        func w(_ r: Int, _ x: [Float]) -> Double { (0..<d).reduce(0.0) { $0 + Double(p.projection[(head * p.rank + r) * d + $1]) * Double(x[$1]) } }
        let vMean = (0..<d).map { i in values.reduce(0.0) { $0 + Double($1[i]) } / n }
        let qMu = (0..<d).reduce(0.0) { acc, i in acc + Double(q[i]) * keys.reduce(0.0) { $0 + Double($1[i]) } / n }
        var variance = 0.0
        var cov = [Double](repeating: 0, count: d)
        for r in 0..<p.rank {
            let pr = w(r, q)
            let projected = keys.map { w(r, $0) }
            let mu = projected.reduce(0, +) / n
            variance += pr * pr * (projected.reduce(0.0) { $0 + $1 * $1 } / n - mu * mu)
            for i in 0..<d {
                cov[i] += s * pr * (zip(projected, values).reduce(0.0) { $0 + $1.0 * Double($1.1[i]) } / n - mu * vMean[i])
            }
        }
        #expect(estimate != nil)
        #expect(abs(Double(estimate!.meanTerm) - (log(n) + s * qMu)) < 1e-5)
        #expect(abs(Double(estimate!.spread) - 0.5 * s * s * variance) < 1e-5)
        for i in 0..<d {
            #expect(abs(Double(mean[i]) - vMean[i]) < 1e-5)
            #expect(abs(Double(covariance[i]) - cov[i]) < 1e-5)
        }
    }

    @Test("the state never grows: its bytes are fixed by rank and head dimension")
    func boundedState() {
        let p = Self.parameters()
        let memory = LatentMemory(parameters: p)
        let before = memory.bytes
        _ = run(memory, budget: 24)
        #expect(memory.bytes == before && before == p.stateBytes)
        #expect(before == testShape.kvHeads * (1 + 2 * 16 + 2 * 4 + 4 * 16) * 4)
        #expect(memory.absorbed.reduce(0, +) > 0)
    }
}
