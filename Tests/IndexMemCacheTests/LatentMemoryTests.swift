// IndexMem — cache tests. Apache-2.0.

import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

@Suite("Latent memory")
struct LatentMemoryTests {
    static func parameters(rank: Int = 8, gateBias: Float = 0, seed: UInt64 = 1) -> LatentMemoryParameters {
        var rng = SplitMix64(seed: seed)
        let d = testShape.headDimension, h = testShape.kvHeads
        return LatentMemoryParameters(rank: rank, headDimension: d, projection: rng.floats(h * rank * d, -0.3, 0.3),
                                      gateWeights: rng.floats(h * d, -0.1, 0.1), gateBiases: [Float](repeating: gateBias, count: h),
                                      decay: 0.99, writeRate: 0.5)
    }

    func run(_ receiver: any EvictedEntryReceiver, budget: Int) -> [[Float]] {
        let cache = BoundedLayerCache(layer: .standalone(testShape), budget: budget, capacity: budget + 16,
                                      selector: BudgetSelector(sinks: 2, window: 4), policy: H2OPolicy(), receiver: receiver)
        var stream = SyntheticStream(shape: testShape, seed: 8)
        return (0..<10).map { step in cache.run(stream.next(step < 5 ? 16 : 1), pool: pool2) }
    }

    @Test("while nothing has been evicted the output is exactly plain attention")
    func emptyMemoryIsPlainAttention() {
        let memory = LatentMemory(parameters: Self.parameters())
        #expect(run(memory, budget: 200) == run(DiscardingReceiver(), budget: 200))
        #expect(memory.absorbed.allSatisfy { $0 == 0 })
    }

    @Test("a closed gate (g = 0) gives exactly plain attention even with a full memory")
    func closedGateIsPlainAttention() {
        let memory = LatentMemory(parameters: Self.parameters(gateBias: -.infinity))
        #expect(run(memory, budget: 24) == run(DiscardingReceiver(), budget: 24))
        #expect(memory.absorbed.allSatisfy { $0 > 0 })
    }

    @Test("state update and readout follow the formulas (double-precision reference)")
    func matchesReference() {
        let p = Self.parameters(rank: 4)
        let memory = LatentMemory(parameters: p)
        var rng = SplitMix64(seed: 3)
        let d = p.headDimension, head = 1
        var refM = [Double](repeating: 0, count: p.rank * d), refB = [Double](repeating: 0, count: p.rank)
        func phi(_ x: [Float]) -> [Double] {
            (0..<p.rank).map { r in (0..<d).reduce(0.0) { $0 + Double(p.projection[(head * p.rank + r) * d + $1]) * Double(x[$1]) } }
        }
        for _ in 0..<7 {
            let k = rng.floats(d), v = rng.floats(d)
            memory.absorb(head: head, key: k, value: v, position: 0)
            let f = phi(k)
            for r in 0..<p.rank {
                for i in 0..<d { refM[r * d + i] = Double(p.decay) * refM[r * d + i] + Double(p.writeRate) * f[r] * Double(v[i]) }
                refB[r] = Double(p.decay) * refB[r] + Double(p.writeRate) * f[r] * f[r]
            }
        }
        let q = rng.floats(d)
        var out = [Float](repeating: 0, count: d)
        memory.addReadout(head: head, query: q, position: 9, output: &out)
        let f = phi(q)
        let gateInput = Double(p.gateBiases[head]) + (0..<d).reduce(0.0) { $0 + Double(p.gateWeights[head * d + $1]) * Double(q[$1]) }
        let gate = 1 / (1 + Foundation.exp(-gateInput))
        let denominator = Double(p.epsilon) + (0..<p.rank).reduce(0.0) { $0 + f[$1] * f[$1] * refB[$1] }
        for i in 0..<d {
            let expected = gate * (0..<p.rank).reduce(0.0) { $0 + f[$1] * refM[$1 * d + i] } / denominator
            #expect(abs(Double(out[i]) - expected) < 1e-4 * max(1, abs(expected)))
        }
        #expect(memory.bytes == (p.kvHeads * p.rank * d + p.kvHeads * p.rank) * 4)
    }
}

import Foundation
