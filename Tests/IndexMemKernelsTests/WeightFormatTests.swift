// IndexMem — kernel tests. Apache-2.0.
//
// Every weight format against scalar references from ggml's C code: dequantization exactly,
// dot products against a double-precision sum, the SIMD path against the portable one, and
// the four-row kernel against four single-row calls.

import Testing
import IndexMemKernels

@Suite("Weight formats")
struct WeightFormatTests {
    @Test("block sizes agree with WeightType", arguments: WeightType.allCases)
    func blockSizes(type: WeightType) {
        if let bytes = formatKernels(type).blockBytes { #expect(bytes == type.blockBytes) }
        #expect(type.rowBytes(type.blockElements * 3) == 3 * type.blockBytes)
    }

    @Test("dequantize matches ggml's reference dequantizer", arguments: WeightType.allCases)
    func dequantize(type: WeightType) {
        var rng = SeededRNG(seed: 0xD0 + UInt64(type.rawValue))
        let k = formatKernels(type)
        for count in testCounts(type) {
            for _ in 0..<4 {
                let row = randomRow(type, count: count, rng: &rng)
                let ref = referenceDequantize(type, row, count: count)
                var out = [Float](repeating: .nan, count: count)
                row.withUnsafeBytes { w in out.withUnsafeMutableBufferPointer { k.dequantize(w.baseAddress!, $0.baseAddress!, count) } }
                let mismatches = (0..<count).filter { out[$0].bitPattern != ref.values[$0].bitPattern }
                #expect(mismatches.isEmpty, "\(type) count \(count): first mismatch \(mismatches.first.map { "\($0): \(out[$0]) vs \(ref.values[$0])" } ?? "")")
            }
        }
    }

    @Test("dot matches a double-precision reference", arguments: WeightType.allCases)
    func dotReference(type: WeightType) {
        var rng = SeededRNG(seed: 0xD07 + UInt64(type.rawValue))
        let k = formatKernels(type)
        for count in testCounts(type) {
            for _ in 0..<6 {
                let row = randomRow(type, count: count, rng: &rng)
                let act = quantizeActivations(type.activationType, rng.activations(count))
                let ref = referenceDot(type, row, act, count: count)
                let got = row.withUnsafeBytes { w in act.withUnsafeBytes { k.dot(w.baseAddress!, $0.baseAddress!, count) } }
                // f32 accumulation: a few ulps of the sum of absolute terms.
                let tolerance = 4e-6 * ref.magnitude + 1e-30
                #expect(abs(Double(got) - ref.value) <= tolerance,
                        "\(type) count \(count): \(got) vs \(ref.value) (magnitude \(ref.magnitude))")
            }
        }
    }

    @Test("SIMD dot equals the portable dot", arguments: WeightType.allCases)
    func portableAgreement(type: WeightType) {
        let k = formatKernels(type)
        guard let portable = k.portable else { return }
        var rng = SeededRNG(seed: 0xA2 + UInt64(type.rawValue))
        for count in testCounts(type) {
            for _ in 0..<6 {
                let row = randomRow(type, count: count, rng: &rng)
                let act = quantizeActivations(type.activationType, rng.activations(count))
                let ref = referenceDot(type, row, act, count: count)
                let (fast, slow) = row.withUnsafeBytes { w in
                    act.withUnsafeBytes { (k.dot(w.baseAddress!, $0.baseAddress!, count), portable(w.baseAddress!, $0.baseAddress!, count)) }
                }
                // Integer sums are exact in both; only the order of float accumulation differs.
                #expect(abs(Double(fast) - Double(slow)) <= 1e-6 * ref.magnitude + 1e-30, "\(type) count \(count): \(fast) vs \(slow)")
            }
        }
    }

    #if arch(x86_64)
    @Test("dot rounds exactly as ggml's AVX2 kernels", arguments: WeightType.allCases.filter { $0.blockElements > 1 })
    func ggmlArithmetic(type: WeightType) {
        let k = formatKernels(type)
        var rng = SeededRNG(seed: 0x6A + UInt64(type.rawValue))
        for count in testCounts(type) {
            for _ in 0..<8 {
                let row = randomRow(type, count: count, rng: &rng)
                let act = quantizeActivations(type.activationType, rng.activations(count))
                let expected = ggmlAVX2Dot(type, row, act, count: count)!
                let got = row.withUnsafeBytes { w in act.withUnsafeBytes { k.dot(w.baseAddress!, $0.baseAddress!, count) } }
                #expect(got.bitPattern == expected.bitPattern, "\(type) count \(count): \(got) vs ggml \(expected)")
            }
        }
    }
    #endif

    @Test("dot4 equals four dot calls", arguments: WeightType.allCases)
    func dot4(type: WeightType) {
        let k = formatKernels(type)
        var rng = SeededRNG(seed: 0x4D + UInt64(type.rawValue))
        for count in testCounts(type) {
            let row = randomRow(type, count: count, rng: &rng)
            let rowBytes = type.activationType.rowBytes(count)
            for padding in [0, 36] {
                let stride = rowBytes + padding
                var acts = [UInt8](repeating: 0xAB, count: 4 * stride)
                for r in 0..<4 {
                    let a = quantizeActivations(type.activationType, rng.activations(count))
                    acts.replaceSubrange((r * stride)..<(r * stride + rowBytes), with: a)
                }
                row.withUnsafeBytes { w in
                    acts.withUnsafeBytes { a in
                        let four = k.dot4(w.baseAddress!, a.baseAddress!, stride, count)
                        for r in 0..<4 {
                            let one = k.dot(w.baseAddress!, a.baseAddress! + r * stride, count)
                            #expect(four[r].bitPattern == one.bitPattern, "\(type) count \(count) row \(r): \(four[r]) vs \(one)")
                        }
                    }
                }
            }
        }
    }

    @Test("integer sums are exact at the extremes of every quant range", arguments: WeightType.allCases.filter { $0.blockElements > 1 })
    func extremes(type: WeightType) {
        // All quant bits set (or cleared) against activations at +-127: the largest int16 pair
        // sums maddubs sees. A unit scale makes the expected value an exact integer.
        let k = formatKernels(type)
        let count = type.blockElements == 256 ? 512 : 64
        for fill: UInt8 in [0x00, 0xFF, 0x55, 0xAA] {
            var row = [UInt8](repeating: fill, count: type.rowBytes(count))
            let one = Float16(1).bitPattern
            for b in 0..<(count / type.blockElements) {
                let o = b * type.blockBytes
                switch type {
                case .q6_K: putHalf(&row, o + 208, one)
                case .q4_1, .q5_1, .q4_K, .q5_K: putHalf(&row, o, one); putHalf(&row, o + 2, one)
                default: putHalf(&row, o, one)
                }
            }
            for sign: Float in [1, -1] {
                var x = [Float](repeating: sign, count: count)
                for i in stride(from: 1, to: count, by: 3) { x[i] = -sign }
                let act = quantizeActivations(type.activationType, x)
                let ref = referenceDot(type, row, act, count: count)
                let got = row.withUnsafeBytes { w in act.withUnsafeBytes { k.dot(w.baseAddress!, $0.baseAddress!, count) } }
                #expect(abs(Double(got) - ref.value) <= 4e-6 * ref.magnitude + 1e-30, "\(type) fill \(fill): \(got) vs \(ref.value)")
                if let portable = k.portable {
                    let slow = row.withUnsafeBytes { w in act.withUnsafeBytes { portable(w.baseAddress!, $0.baseAddress!, count) } }
                    #expect(abs(Double(slow) - ref.value) <= 4e-6 * ref.magnitude + 1e-30, "\(type) fill \(fill) portable: \(slow) vs \(ref.value)")
                }
            }
        }
    }

    @Test("WeightKernels.of dispatches to each format", arguments: WeightType.allCases)
    func weightKernels(type: WeightType) {
        var rng = SeededRNG(seed: 0x3C + UInt64(type.rawValue))
        let count = testCounts(type).last!
        let row = randomRow(type, count: count, rng: &rng)
        let act = quantizeActivations(type.activationType, rng.activations(count))
        let k = formatKernels(type), wk = WeightKernels.of(type)
        row.withUnsafeBytes { w in
            act.withUnsafeBytes { a in
                #expect(wk.dot(w.baseAddress!, a.baseAddress!, count).bitPattern == k.dot(w.baseAddress!, a.baseAddress!, count).bitPattern)
                #expect(type.rowFormat.dot(w.baseAddress!, a.baseAddress!, count: count).bitPattern == k.dot(w.baseAddress!, a.baseAddress!, count).bitPattern)
            }
        }
    }
}
