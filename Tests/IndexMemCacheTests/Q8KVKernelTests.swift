// IndexMem — cache tests. Apache-2.0.
//
// Q8_0 KV entries: ggml's reference quantization (scale, rounding half away from zero), the
// storage's round trip (append, read, move, remove, snapshot), the AVX2 score and value
// kernels bit for bit against their scalar forms, and the whole attention against a float
// reference over the dequantized entries.

import Foundation
import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport
import Testing

@Suite("Q8KV kernels and storage")
struct Q8KVKernelTests {
    static func quantized(_ x: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: KVQ8_0.rowBytes(count: x.count))
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { KVQ8_0.quantize(src.baseAddress!, count: x.count, into: $0.baseAddress!) } }
        return out
    }

    static func dequantized(_ q: [UInt8], count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        q.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { KVQ8_0.dequantize(src.baseAddress!, count: count, into: $0.baseAddress!) } }
        return out
    }

    @Test("quantization is ggml's reference: d = amax / 127 in f16, q = roundf(x / d)")
    func referenceRounding() {
        // amax 127 makes d = 1: x / d is x, so the ties show the rounding.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 0.5; x[2] = -0.5; x[3] = 2.5; x[4] = -2.5; x[5] = 1.49; x[6] = -126.5
        let q = Self.quantized(x)
        #expect(q.count == 34)
        #expect(UInt16(q[0]) | UInt16(q[1]) << 8 == Half.bits(1))
        let ints = q[2...].map { Int8(bitPattern: $0) }
        #expect(Array(ints[0..<7]) == [127, 1, -1, 3, -3, 1, -127], "half away from zero, not half to even")
        // A zero block has scale 0 and zeros.
        #expect(Self.quantized([Float](repeating: 0, count: 32)).allSatisfy { $0 == 0 })
    }

    @Test("the AVX2 quantizer writes the reference's bytes, ties included")
    func quantizerMatchesReference() {
        var rng = SplitMix64(seed: 5)
        // Random rows, and rows of exact ties (x / d = k + 0.5 with amax 127) and tiny values.
        var rows = (0..<64).map { _ in rng.floats(64, -5, 5) }
        rows.append([127] + (0..<63).map { Float($0 % 16) - 7.5 })
        rows.append((0..<64).map { Float($0) * 1e-30 })
        for x in rows {
            var fast = [UInt8](repeating: 0, count: 68), slow = fast
            x.withUnsafeBufferPointer { src in
                fast.withUnsafeMutableBytes { KVQ8_0.quantize(src.baseAddress!, count: 64, into: $0.baseAddress!) }
                slow.withUnsafeMutableBytes { KVQ8_0.quantizeReference(src.baseAddress!, count: 64, into: $0.baseAddress!) }
            }
            #expect(fast == slow)
        }
    }

    @Test("a row comes back within half a step of its block's scale (and the scale's f16 rounding)")
    func roundTrip() {
        var rng = SplitMix64(seed: 7)
        let x = rng.floats(256, -3, 3)
        let back = Self.dequantized(Self.quantized(x), count: 256)
        for b in 0..<8 {
            let block = x[(b * 32)..<(b * 32 + 32)]
            // q is rounded against the float scale, the f16 scale multiplies it back: up to 127
            // times their difference more than half a step (as in ggml).
            let exact = block.map(abs).max()! / 127, step = Half.toFloat(Half.bits(exact))
            for i in block.indices { #expect(abs(back[i] - x[i]) <= step * 0.5 + 127 * abs(step - exact) + 1e-6) }
        }
    }

    @Test("AVX2 scores and weighted sums equal their scalar forms bit for bit", arguments: [32, 64, 96, 256])
    func kernelsMatchReference(d: Int) {
        var rng = SplitMix64(seed: UInt64(d))
        let slots = 37, blocks = d / 32, rowBytes = KVQ8_0.rowBytes(count: d)
        var keys = [UInt8](), values = [UInt8]()
        for _ in 0..<slots {
            keys += Self.quantized(rng.floats(d, -2, 2))
            values += Self.quantized(rng.floats(d))
        }
        let query = Self.quantized(rng.floats(d, -4, 4))
        let p = rng.floats(slots + 8, 0, 1)
        var fast = [Float](repeating: 0, count: slots), slow = fast
        var outFast = [Float](repeating: 0, count: d), outSlow = outFast
        keys.withUnsafeBytes { k in
            query.withUnsafeBytes { q in
                KVQ8_0.scores(query: q.baseAddress!, keys: k.baseAddress!, rowBytes: rowBytes, blocks: blocks, lo: 3, hi: slots, into: &fast)
                KVQ8_0.scoresReference(query: q.baseAddress!, keys: k.baseAddress!, rowBytes: rowBytes, blocks: blocks, lo: 3, hi: slots, into: &slow)
            }
        }
        values.withUnsafeBytes { v in
            KVQ8_0.accumulate(probabilities: p, values: v.baseAddress!, rowBytes: rowBytes, blocks: blocks, lo: 2, hi: slots, into: &outFast)
            KVQ8_0.accumulateReference(probabilities: p, values: v.baseAddress!, rowBytes: rowBytes, blocks: blocks, lo: 2, hi: slots, into: &outSlow)
        }
        #expect(fast == slow)
        #expect(outFast == outSlow)
        // And the scores are the dot products of the dequantized rows.
        let qf = Self.dequantized(query, count: d)
        for j in 3..<slots {
            let kf = Self.dequantized(Array(keys[(j * rowBytes)..<((j + 1) * rowBytes)]), count: d)
            let exact = zip(qf, kf).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(fast[j]) - exact) <= 1e-4 * max(1, abs(exact)))
        }
    }

    @Test("storage: entries read back as quantized, survive moves, removals and snapshots; 34/64 of f16's bytes")
    func storageRoundTrip() {
        let d = 64
        let storage = KVStorage(kvHeads: 2, headDimension: d, capacity: 40, entryType: .q8_0)
        var rng = SplitMix64(seed: 3)
        var written: [[Float]] = []
        for t in 0..<20 {
            let k = rng.floats(d), v = rng.floats(d)
            written.append(k + v)
            for h in 0..<2 { storage.append(head: h, key: k, value: v, position: Int32(t)) }
        }
        func entry(_ h: Int, _ slot: Int) -> [Float] {
            var k = [Float](repeating: 0, count: d), v = k
            storage.read(head: h, slot: slot, key: &k, value: &v)
            return k + v
        }
        for t in 0..<20 {
            let expected = Self.dequantized(Self.quantized(Array(written[t][0..<d])), count: d)
                + Self.dequantized(Self.quantized(Array(written[t][d...])), count: d)
            #expect(entry(1, t) == expected)
        }
        #expect(storage.bytesPerEntry == 2 * 68)
        #expect(storage.bytes * 64 == KVStorage(kvHeads: 2, headDimension: d, capacity: 40).bytesPerEntry * 40 * 34)
        let before = (0..<20).map { entry(0, $0) }
        let snapshot = storage.snapshot()
        [2, 5, 6].withUnsafeBufferPointer { storage.remove(head: 0, sortedSlots: $0) }
        #expect(storage.counts[0] == 17)
        #expect((0..<17).map { entry(0, $0) } == before.enumerated().filter { ![2, 5, 6].contains($0.offset) }.map(\.element))
        #expect(storage.positions(head: 0)[2] == 3)
        storage.restore(snapshot)
        #expect((0..<20).map { entry(0, $0) } == before)
    }

    @Test("attention over q8_0 entries equals softmax over the dequantized entries with the quantized query")
    func attentionMatchesFloatReference() {
        let d = 64, n = 45
        let storage = KVStorage(kvHeads: 1, headDimension: d, capacity: n, entryType: .q8_0)
        var rng = SplitMix64(seed: 11)
        for t in 0..<n { storage.append(head: 0, key: rng.floats(d, -2, 2), value: rng.floats(d), position: Int32(t)) }
        let query = rng.floats(d, -2, 2)
        let scale: Float = 0.125
        var probabilities = [Float](repeating: 0, count: n + 64), output = [Float](repeating: 0, count: d)
        var scratch = [Float](repeating: 0, count: d)
        for (lo, window) in [(0, nil), (5, nil), (0, Int32(30))] as [(Int, Int32?)] {
            let (m, sum) = AttentionKernel.attendEntries(query: query, queryScratch: &scratch, storage: storage, head: 0, lo: lo, hi: n,
                                                         scale: scale, probabilities: &probabilities, output: &output, singleQuery: false,
                                                         windowStart: window)
            let qf = Self.dequantized(Self.quantized(query), count: d)
            var k = [Float](repeating: 0, count: d), v = k
            var scores: [Double] = [], rows: [[Float]] = []
            for j in lo..<n where window.map({ Int32(j) >= $0 }) ?? true {
                storage.read(head: 0, slot: j, key: &k, value: &v)
                scores.append(Double(scale) * zip(qf, k).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
                rows.append(v)
            }
            let top = scores.max()!
            let weights = scores.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            #expect(abs(Double(m) - top) < 1e-5)
            #expect(abs(sum / total - 1) < 1e-5)
            for i in 0..<d {
                let exact = zip(weights, rows).reduce(0.0) { $0 + $1.0 * Double($1.1[i]) } / total
                #expect(abs(Double(output[i]) - exact) < 1e-5, "lo \(lo) window \(String(describing: window)) dimension \(i)")
            }
            let visible = probabilities[lo..<n].reduce(0, +)
            #expect(abs(visible - 1) < 1e-5)
        }
    }
}
