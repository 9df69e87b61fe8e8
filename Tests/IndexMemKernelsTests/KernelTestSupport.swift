// IndexMem — kernel tests. Apache-2.0.
//
// Seeded random data, scalar reference dequantizers written from ggml's reference C code
// (`dequantize_row_*` in ggml-quants.c), and a table of each weight format's kernels.

import IndexMemKernels

// MARK: - Seeded random numbers

/// The project's one generator, under the name these tests use.
typealias SeededRNG = SplitMix64

extension SplitMix64 {
    mutating func float(_ range: ClosedRange<Float>) -> Float { Float.random(in: range, using: &self) }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func byte() -> UInt8 { UInt8.random(in: 0...255, using: &self) }

    /// An f16 scale from a mix of regimes: ordinary, zero, negative zero, subnormal, tiny, huge.
    mutating func halfScale() -> UInt16 {
        let sign: UInt16 = int(0...1) == 0 ? 0 : 0x8000
        switch int(0...11) {
        case 0: return 0
        case 1: return 0x8000
        case 2: return sign | UInt16(int(1...0x3ff))                       // subnormal
        case 3: return sign | Float16(float(6.2e-5...1e-3)).bitPattern     // tiny normal
        case 4: return sign | Float16(float(1e3...65000)).bitPattern       // huge
        case 5: return sign | 0x7bff                                       // largest finite
        default: return sign | Float16(float(1e-3...0.2)).bitPattern
        }
    }

    /// Activation-like floats: mostly moderate, sometimes an outlier, a zero block or tiny values.
    mutating func activations(_ count: Int) -> [Float] {
        var x = (0..<count).map { _ in float(-1...1) }
        var i = 0
        while i < count {
            let n = min(32, count - i)
            switch int(0...9) {
            case 0: for j in i..<(i + n) { x[j] = 0 }
            case 1: x[i + int(0...(n - 1))] = float(-60...60)
            case 2: for j in i..<(i + n) { x[j] *= 1e-6 }
            case 3: for j in i..<(i + n) { x[j] *= 30 }
            default: break
            }
            i += n
        }
        return x
    }
}

// MARK: - Random weight rows

func putHalf(_ bytes: inout [UInt8], _ offset: Int, _ bits: UInt16) {
    bytes[offset] = UInt8(truncatingIfNeeded: bits)
    bytes[offset + 1] = UInt8(truncatingIfNeeded: bits >> 8)
}

func half(_ bytes: [UInt8], _ offset: Int) -> Float {
    Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8))
}

func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
}

func f32(_ bytes: [UInt8], _ offset: Int) -> Float { Float(bitPattern: u32(bytes, offset)) }

/// A random row of `count` values of `type`: random quant bytes, f16 scales from `halfScale`.
func randomRow(_ type: WeightType, count: Int, rng: inout SeededRNG) -> [UInt8] {
    var bytes = (0..<type.rowBytes(count)).map { _ in rng.byte() }
    switch type {
    case .f32:
        for i in 0..<count {
            let v = rng.int(0...20) == 0 ? rng.float(-1e-3...1e-3) : rng.float(-4...4)
            withUnsafeBytes(of: v.bitPattern.littleEndian) { for k in 0..<4 { bytes[4 * i + k] = $0[k] } }
        }
    case .f16:
        for i in 0..<count {
            let bits: UInt16 = rng.int(0...15) == 0 ? UInt16(rng.int(0...0x3ff)) | (rng.int(0...1) == 0 ? 0 : 0x8000)
                : Float16(rng.float(-4...4)).bitPattern
            putHalf(&bytes, 2 * i, bits)
        }
    case .bf16:
        for i in 0..<count {
            let v = rng.int(0...15) == 0 ? rng.float(-1e-30...1e-30) : rng.float(-4...4)
            putHalf(&bytes, 2 * i, BFloat16Conversion.fromFloat(v))
        }
    case .q4_0, .q5_0, .q8_0:
        for b in 0..<(count / 32) { putHalf(&bytes, b * type.blockBytes, rng.halfScale()) }
    case .q4_1, .q5_1:
        for b in 0..<(count / 32) {
            putHalf(&bytes, b * type.blockBytes, rng.halfScale())
            putHalf(&bytes, b * type.blockBytes + 2, rng.halfScale())
        }
    case .q4_K, .q5_K:
        for b in 0..<(count / 256) {
            putHalf(&bytes, b * type.blockBytes, rng.halfScale())
            putHalf(&bytes, b * type.blockBytes + 2, rng.halfScale())
        }
    case .q6_K:
        for b in 0..<(count / 256) { putHalf(&bytes, b * 210 + 208, rng.halfScale()) }
    }
    return bytes
}

// MARK: - Reference dequantization (ggml `dequantize_row_*`)

/// Values of a row, and per value the magnitude of its parts (|scale part| + |min part|)
/// for error bounds where the two parts cancel.
struct Dequantized {
    var values: [Float]
    var magnitudes: [Double]
    /// For Q4_1 and Q5_1: d * q without the minimum.
    var scaleParts: [Float]
}

/// ggml's `get_scale_min_k4`.
func scaleMinK4(_ j: Int, _ q: ArraySlice<UInt8>) -> (UInt8, UInt8) {
    let q = Array(q)
    if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
    return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
}

func referenceDequantize(_ type: WeightType, _ x: [UInt8], count: Int) -> Dequantized {
    var y = [Float](repeating: 0, count: count)
    var mag = [Double](repeating: 0, count: count)
    var parts = [Float](repeating: 0, count: count)
    let bb = type.blockBytes
    switch type {
    case .f32:
        for i in 0..<count { y[i] = f32(x, 4 * i); mag[i] = Double(abs(y[i])) }
    case .f16:
        for i in 0..<count { y[i] = half(x, 2 * i); mag[i] = Double(abs(y[i])) }
    case .bf16:
        for i in 0..<count { y[i] = Float(bitPattern: UInt32(x[2 * i]) << 16 | UInt32(x[2 * i + 1]) << 24); mag[i] = Double(abs(y[i])) }
    case .q4_0:
        for b in 0..<(count / 32) {
            let o = b * bb, d = half(x, o)
            for j in 0..<16 {
                let x0 = Int(x[o + 2 + j] & 0x0F) - 8, x1 = Int(x[o + 2 + j] >> 4) - 8
                y[b * 32 + j] = Float(x0) * d
                y[b * 32 + j + 16] = Float(x1) * d
            }
        }
        for i in 0..<count { mag[i] = Double(abs(y[i])) }
    case .q4_1:
        for b in 0..<(count / 32) {
            let o = b * bb, d = half(x, o), m = half(x, o + 2)
            for j in 0..<16 {
                let x0 = Int(x[o + 4 + j] & 0x0F), x1 = Int(x[o + 4 + j] >> 4)
                y[b * 32 + j] = Float(x0) * d + m
                y[b * 32 + j + 16] = Float(x1) * d + m
                parts[b * 32 + j] = Float(x0) * d
                parts[b * 32 + j + 16] = Float(x1) * d
                mag[b * 32 + j] = Double(abs(Float(x0) * d)) + Double(abs(m))
                mag[b * 32 + j + 16] = Double(abs(Float(x1) * d)) + Double(abs(m))
            }
        }
    case .q5_0:
        for b in 0..<(count / 32) {
            let o = b * bb, d = half(x, o), qh = u32(x, o + 2)
            for j in 0..<16 {
                let xh0 = UInt8(((qh & (1 << j)) >> j) << 4)
                let xh1 = UInt8((qh & (1 << (j + 16))) >> (j + 12))
                let x0 = Int((x[o + 6 + j] & 0x0F) | xh0) - 16, x1 = Int((x[o + 6 + j] >> 4) | xh1) - 16
                y[b * 32 + j] = Float(x0) * d
                y[b * 32 + j + 16] = Float(x1) * d
            }
        }
        for i in 0..<count { mag[i] = Double(abs(y[i])) }
    case .q5_1:
        for b in 0..<(count / 32) {
            let o = b * bb, d = half(x, o), m = half(x, o + 2), qh = u32(x, o + 4)
            for j in 0..<16 {
                let xh0 = UInt8(((qh >> j) << 4) & 0x10)
                let xh1 = UInt8((qh >> (j + 12)) & 0x10)
                let x0 = Int((x[o + 8 + j] & 0x0F) | xh0), x1 = Int((x[o + 8 + j] >> 4) | xh1)
                y[b * 32 + j] = Float(x0) * d + m
                y[b * 32 + j + 16] = Float(x1) * d + m
                parts[b * 32 + j] = Float(x0) * d
                parts[b * 32 + j + 16] = Float(x1) * d
                mag[b * 32 + j] = Double(abs(Float(x0) * d)) + Double(abs(m))
                mag[b * 32 + j + 16] = Double(abs(Float(x1) * d)) + Double(abs(m))
            }
        }
    case .q8_0:
        for b in 0..<(count / 32) {
            let o = b * bb, d = half(x, o)
            for j in 0..<32 { y[b * 32 + j] = Float(Int8(bitPattern: x[o + 2 + j])) * d }
        }
        for i in 0..<count { mag[i] = Double(abs(y[i])) }
    case .q4_K, .q5_K:
        let isQ5 = type == .q5_K
        for b in 0..<(count / 256) {
            let o = b * bb, d = half(x, o), dmin = half(x, o + 2)
            let scales = x[(o + 4)..<(o + 16)]
            let qsOffset = o + (isQ5 ? 48 : 16), qhOffset = o + 16
            var i = b * 256, qs = qsOffset, isub = 0
            var u1: UInt8 = 1, u2: UInt8 = 2
            for _ in stride(from: 0, to: 256, by: 64) {
                let (sc1, m1b) = scaleMinK4(isub, scales), (sc2, m2b) = scaleMinK4(isub + 1, scales)
                let d1 = d * Float(sc1), m1 = dmin * Float(m1b), d2 = d * Float(sc2), m2 = dmin * Float(m2b)
                for l in 0..<32 {
                    var q = Int(x[qs + l] & 0xF)
                    if isQ5 && x[qhOffset + l] & u1 != 0 { q += 16 }
                    y[i] = d1 * Float(q) - m1
                    mag[i] = Double(abs(d1 * Float(q))) + Double(abs(m1))
                    i += 1
                }
                for l in 0..<32 {
                    var q = Int(x[qs + l] >> 4)
                    if isQ5 && x[qhOffset + l] & u2 != 0 { q += 16 }
                    y[i] = d2 * Float(q) - m2
                    mag[i] = Double(abs(d2 * Float(q))) + Double(abs(m2))
                    i += 1
                }
                qs += 32; isub += 2; u1 <<= 2; u2 <<= 2
            }
        }
    case .q6_K:
        for b in 0..<(count / 256) {
            let o = b * bb, d = half(x, o + 208)
            var ql = o, qh = o + 128, sc = o + 192, yi = b * 256
            for _ in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    let isub = l / 16
                    let q1 = Int(Int8(bitPattern: (x[ql + l] & 0xF) | ((x[qh + l] >> 0) & 3) << 4)) - 32
                    let q2 = Int(Int8(bitPattern: (x[ql + l + 32] & 0xF) | ((x[qh + l] >> 2) & 3) << 4)) - 32
                    let q3 = Int(Int8(bitPattern: (x[ql + l] >> 4) | ((x[qh + l] >> 4) & 3) << 4)) - 32
                    let q4 = Int(Int8(bitPattern: (x[ql + l + 32] >> 4) | ((x[qh + l] >> 6) & 3) << 4)) - 32
                    func s(_ k: Int) -> Float { Float(Int8(bitPattern: x[sc + isub + k])) }
                    y[yi + l] = d * s(0) * Float(q1)
                    y[yi + l + 32] = d * s(2) * Float(q2)
                    y[yi + l + 64] = d * s(4) * Float(q3)
                    y[yi + l + 96] = d * s(6) * Float(q4)
                }
                yi += 128; ql += 64; qh += 32; sc += 8
            }
        }
        for i in 0..<count { mag[i] = Double(abs(y[i])) }
    }
    if type != .q4_1 && type != .q5_1 { parts = y }
    return Dequantized(values: y, magnitudes: mag, scaleParts: parts)
}

// MARK: - Reference dot product

/// sum(dequant(w) * dequant(a)) in double, with the activation in `type.activationType` as
/// stored (for Q8_1 the minimum meets the stored f16 `s`, as in ggml). Also returns the sum of
/// absolute parts, the scale of any float rounding error.
func referenceDot(_ type: WeightType, _ w: [UInt8], _ a: [UInt8], count: Int) -> (value: Double, magnitude: Double) {
    let wd = referenceDequantize(type, w, count: count)
    var value: Double = 0, magnitude: Double = 0
    switch type.activationType {
    case .f32, .f16, .bf16:
        let av: [Float]
        switch type.activationType {
        case .f32: av = (0..<count).map { f32(a, 4 * $0) }
        case .f16: av = (0..<count).map { half(a, 2 * $0) }
        default: av = (0..<count).map { Float(bitPattern: UInt32(a[2 * $0]) << 16 | UInt32(a[2 * $0 + 1]) << 24) }
        }
        for i in 0..<count {
            value += Double(wd.values[i]) * Double(av[i])
            magnitude += wd.magnitudes[i] * Double(abs(av[i]))
        }
    case .q8_0:
        for i in 0..<count {
            let o = (i / 32) * 34
            let av = Double(half(a, o)) * Double(Int8(bitPattern: a[o + 2 + i % 32]))
            value += Double(wd.values[i]) * av
            magnitude += wd.magnitudes[i] * abs(av)
        }
    case .q8_1:
        // value = d*q + m: the d*q part meets d_a*q_a, the minimum meets s per block.
        for b in 0..<(count / 32) {
            let o = b * 36, wo = b * type.blockBytes
            let da = Double(half(a, o)), s = Double(half(a, o + 2))
            let m = Double(half(w, wo + 2))
            for j in 0..<32 {
                let i = b * 32 + j
                let scalePart = Double(wd.scaleParts[i])
                let av = da * Double(Int8(bitPattern: a[o + 4 + j]))
                value += scalePart * av
                magnitude += abs(scalePart * av)
            }
            value += m * s
            magnitude += abs(m * s)
        }
    case .q8_K:
        for i in 0..<count {
            let o = (i / 256) * 292
            let av = Double(f32(a, o)) * Double(Int8(bitPattern: a[o + 4 + i % 256]))
            value += Double(wd.values[i]) * av
            magnitude += wd.magnitudes[i] * abs(av)
        }
    }
    return (value, magnitude)
}

// MARK: - Kernel table

typealias DotFn = (UnsafeRawPointer, UnsafeRawPointer, Int) -> Float

struct FormatKernels {
    let dot: DotFn
    let portable: DotFn?
    let dot4: (UnsafeRawPointer, UnsafeRawPointer, Int, Int) -> SIMD4<Float>
    let dequantize: (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void
    let blockBytes: Int?
}

func make<F: RowFormat>(_: F.Type, portable: DotFn?, blockBytes: Int?) -> FormatKernels {
    FormatKernels(dot: { F.dot($0, $1, count: $2) }, portable: portable,
                  dot4: { F.dot4($0, $1, aStride: $2, count: $3) },
                  dequantize: { F.dequantize($0, $1, count: $2) }, blockBytes: blockBytes)
}

func formatKernels(_ type: WeightType) -> FormatKernels {
    switch type {
    case .f32: return make(F32Row.self, portable: nil, blockBytes: nil)
    case .f16: return make(F16Row.self, portable: { F16Row.dotPortable($0, $1, count: $2) }, blockBytes: F16Row.blockBytes)
    case .bf16: return make(BF16Row.self, portable: { BF16Row.dotPortable($0, $1, count: $2) }, blockBytes: BF16Row.blockBytes)
    case .q4_0: return make(Q4_0.self, portable: { Q4_0.dotPortable($0, $1, count: $2) }, blockBytes: Q4_0.blockBytes)
    case .q4_1: return make(Q4_1.self, portable: { Q4_1.dotPortable($0, $1, count: $2) }, blockBytes: Q4_1.blockBytes)
    case .q5_0: return make(Q5_0.self, portable: { Q5_0.dotPortable($0, $1, count: $2) }, blockBytes: Q5_0.blockBytes)
    case .q5_1: return make(Q5_1.self, portable: { Q5_1.dotPortable($0, $1, count: $2) }, blockBytes: Q5_1.blockBytes)
    case .q8_0: return make(Q8_0.self, portable: { Q8_0.dotPortable($0, $1, count: $2) }, blockBytes: Q8_0.blockBytes)
    case .q4_K: return make(Q4_K.self, portable: { Q4_K.dotPortable($0, $1, count: $2) }, blockBytes: Q4_K.blockBytes)
    case .q5_K: return make(Q5_K.self, portable: { Q5_K.dotPortable($0, $1, count: $2) }, blockBytes: Q5_K.blockBytes)
    case .q6_K: return make(Q6_K.self, portable: { Q6_K.dotPortable($0, $1, count: $2) }, blockBytes: Q6_K.blockBytes)
    }
}

/// Row lengths to test a type with: odd and even block counts, tails for the 1-element types.
func testCounts(_ type: WeightType) -> [Int] {
    switch type.blockElements {
    case 1: return [1, 7, 16, 33, 100, 512]
    case 32: return [32, 96, 512]
    default: return [256, 768]
    }
}

/// Quantizes float activations into `type`'s activation format.
func quantizeActivations(_ type: ActivationType, _ x: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: type.rowBytes(x.count))
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBytes { ActivationQuantizer.quantize(type, xp.baseAddress!, count: x.count, into: $0.baseAddress!) }
    }
    return out
}
