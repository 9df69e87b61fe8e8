// IndexMem — kernel tests. Apache-2.0.
//
// Activation quantizers against scalar references of ggml's x86 code (`quantize_row_q8_0/1`:
// d = amax / 127, q = round-half-even(x * 127 / amax)) and of `quantize_row_q8_K_ref`.

import Testing
import IndexMemKernels

/// ggml's `nearest_int`: round half to even through the float mantissa.
func nearestInt(_ f: Float) -> Int32 {
    let v = f + 12_582_912
    return Int32(bitPattern: v.bitPattern & 0x007f_ffff) - 0x0040_0000
}

func referenceQ8(_ x: [Float], withSum: Bool) -> [UInt8] {
    let bb = withSum ? 36 : 34, qo = withSum ? 4 : 2
    var out = [UInt8](repeating: 0, count: x.count / 32 * bb)
    for b in 0..<(x.count / 32) {
        let block = x[(b * 32)..<(b * 32 + 32)]
        let amax = block.map { abs($0) }.max()!
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        var sum = 0
        for (j, v) in block.enumerated() {
            let q = Int8(nearestInt(v * id))
            sum += Int(q)
            out[b * bb + qo + j] = UInt8(bitPattern: q)
        }
        putHalf(&out, b * bb, Float16(d).bitPattern)
        if withSum { putHalf(&out, b * bb + 2, Float16(d * Float(sum)).bitPattern) }
    }
    return out
}

func referenceQ8K(_ x: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: x.count / 256 * 292)
    for b in 0..<(x.count / 256) {
        let o = b * 292
        var amax: Float = 0, maxValue: Float = 0
        for j in 0..<256 where abs(x[b * 256 + j]) > amax { amax = abs(x[b * 256 + j]); maxValue = x[b * 256 + j] }
        if amax == 0 { continue }
        let iscale = -127 / maxValue
        var q = [Int32](repeating: 0, count: 256)
        for j in 0..<256 {
            q[j] = min(127, nearestInt(iscale * x[b * 256 + j]))
            out[o + 4 + j] = UInt8(bitPattern: Int8(q[j]))
        }
        for g in 0..<16 {
            let s = Int16(q[(g * 16)..<(g * 16 + 16)].reduce(0, +))
            out[o + 260 + 2 * g] = UInt8(truncatingIfNeeded: s)
            out[o + 261 + 2 * g] = UInt8(truncatingIfNeeded: s >> 8)
        }
        withUnsafeBytes(of: (1 / iscale).bitPattern.littleEndian) { for k in 0..<4 { out[o + k] = $0[k] } }
    }
    return out
}

func run(_ x: [Float], bytes: Int, _ f: (UnsafePointer<Float>, Int, UnsafeMutableRawPointer) -> Void) -> [UInt8] {
    var out = [UInt8](repeating: 0xCD, count: bytes)
    x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBytes { f(xp.baseAddress!, x.count, $0.baseAddress!) } }
    return out
}

/// Inputs with the interesting cases up front: exact halves (ties), a zero block, a negative extreme.
func quantizerInputs(_ count: Int, rng: inout SeededRNG) -> [Float] {
    var x = rng.activations(count)
    let ties: [Float] = [127, 2.5, 3.5, -2.5, -0.5, 0.5, 1.5, -1.5, 126.5, -126.5]
    for (i, v) in ties.enumerated() { x[i] = v }
    for i in 32..<64 { x[i] = 0 }
    x[70] = -90
    return x
}

@Suite("Activation quantization")
struct ActivationQuantizationTests {
    @Test("Q8_0: SIMD, portable and scalar reference agree byte for byte")
    func q8_0() {
        var rng = SeededRNG(seed: 80)
        for count in [32, 256, 1024] {
            let x = quantizerInputs(max(count, 256), rng: &rng)
            let fast = run(x, bytes: x.count / 32 * 34) { ActivationQuantizer.quantizeQ8_0($0, count: $1, into: $2) }
            let slow = run(x, bytes: x.count / 32 * 34) { ActivationQuantizer.quantizeQ8_0Portable($0, count: $1, into: $2) }
            #expect(fast == slow)
            #expect(fast == referenceQ8(x, withSum: false))
        }
    }

    @Test("Q8_1: SIMD, portable and scalar reference agree byte for byte")
    func q8_1() {
        var rng = SeededRNG(seed: 81)
        for count in [256, 1024] {
            let x = quantizerInputs(count, rng: &rng)
            let fast = run(x, bytes: x.count / 32 * 36) { ActivationQuantizer.quantizeQ8_1($0, count: $1, into: $2) }
            let slow = run(x, bytes: x.count / 32 * 36) { ActivationQuantizer.quantizeQ8_1Portable($0, count: $1, into: $2) }
            #expect(fast == slow)
            #expect(fast == referenceQ8(x, withSum: true))
        }
    }

    @Test("Q8_K matches quantize_row_q8_K_ref, group sums included")
    func q8_K() {
        var rng = SeededRNG(seed: 82)
        for count in [256, 1024] {
            var x = quantizerInputs(count, rng: &rng)
            for i in 256..<min(512, count) { x[i] = 0 }  // an all-zero super-block
            let got = run(x, bytes: x.count / 256 * 292) { ActivationQuantizer.quantizeQ8_K($0, count: $1, into: $2) }
            let portable = run(x, bytes: x.count / 256 * 292) { ActivationQuantizer.quantizeQ8_KPortable($0, count: $1, into: $2) }
            #expect(got == referenceQ8K(x))
            #expect(portable == got)
        }
    }

    @Test("Q8_K: the first value of largest magnitude sets the sign of the scale")
    func q8_KExtremes() {
        var x = [Float](repeating: 0.25, count: 512)
        x[5] = -3; x[9] = 3                     // tie in magnitude: the first (negative) wins
        x[256 + 200] = 7; x[256 + 201] = -7     // the positive one wins
        x[256 + 3] = -6.999999
        let got = run(x, bytes: 584) { ActivationQuantizer.quantizeQ8_K($0, count: $1, into: $2) }
        #expect(got == referenceQ8K(x))
        // The chosen extreme always maps to -127.
        #expect(Int8(bitPattern: got[4 + 5]) == -127 && Int8(bitPattern: got[4 + 9]) == 127)
        #expect(Int8(bitPattern: got[292 + 4 + 200]) == -127 && Int8(bitPattern: got[292 + 4 + 201]) == 127)
        #expect(f32(got, 0) > 0 && f32(got, 292) < 0)
    }

    @Test("ties round half to even")
    func ties() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = 3.5; x[3] = -2.5; x[4] = 0.5
        let q = run(x, bytes: 34) { ActivationQuantizer.quantizeQ8_0($0, count: $1, into: $2) }
        #expect(Array(q[2..<7].map { Int8(bitPattern: $0) }) == [127, 2, 4, -2, 0])
    }

    @Test("quantize dispatches f32, f16 and bf16 conversions")
    func plainFormats() {
        var rng = SeededRNG(seed: 83)
        let x = rng.activations(67)
        let f = run(x, bytes: 67 * 4) { ActivationQuantizer.quantize(.f32, $0, count: $1, into: $2) }
        #expect(f == x.withUnsafeBytes { Array($0) })
        let h = run(x, bytes: 67 * 2) { ActivationQuantizer.quantize(.f16, $0, count: $1, into: $2) }
        for i in 0..<67 { #expect(UInt16(h[2 * i]) | UInt16(h[2 * i + 1]) << 8 == Float16(x[i]).bitPattern) }
        let b = run(x, bytes: 67 * 2) { ActivationQuantizer.quantize(.bf16, $0, count: $1, into: $2) }
        for i in 0..<67 {
            // Round to nearest even on the upper half of the f32 bits.
            let u = x[i].bitPattern
            let expected = UInt16((u + 0x7fff + ((u >> 16) & 1)) >> 16)
            #expect(UInt16(b[2 * i]) | UInt16(b[2 * i + 1]) << 8 == expected)
        }
    }
}
