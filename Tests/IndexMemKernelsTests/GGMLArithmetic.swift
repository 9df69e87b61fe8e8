// IndexMem — kernel tests. Apache-2.0.
//
// A scalar emulation of ggml's AVX2 dot products (ggml-cpu/arch/x86/quants.c), used to check
// that ours round exactly as llama.cpp's do: the same int32 lanes (`maddubs` pairs summed by
// `madd`, so lane L of a 32-value group holds values 4L..<4L+4), the same float operations in
// the same order (`acc = fma(d, float(lane), acc)` per block), and `hsum_float_8`.

import IndexMemKernels

/// `hsum_float_8`: high and low 128-bit halves added, then ((r0 + r2) + (r1 + r3)).
func ggmlHsum8(_ v: [Float]) -> Float {
    let r = (0..<4).map { v[$0 + 4] + v[$0] }
    return (r[0] + r[2]) + (r[1] + r[3])
}

/// Integer values of one 32-value group: weights q (offset applied), per-value scale, activations.
private struct Group {
    var q = [Int32](repeating: 0, count: 32)
    var scale = [Int32](repeating: 1, count: 32)
    var y = [Int32](repeating: 0, count: 32)

    /// The 8 int32 lanes of `madd(scales, maddubs(q, y))`.
    var lanes: [Int32] {
        var lanes = [Int32](repeating: 0, count: 8)
        for e in 0..<32 {
            let p: Int32 = scale[e] * q[e] * y[e]
            lanes[e / 4] += p
        }
        return lanes
    }
}

private func int8(_ b: [UInt8], _ o: Int) -> Int32 { Int32(Int8(bitPattern: b[o])) }
private func i16(_ b: [UInt8], _ o: Int) -> Int32 { Int32(Int16(bitPattern: UInt16(b[o]) | UInt16(b[o + 1]) << 8)) }

/// ggml's AVX2 result for a quantized weight type, or nil for the float types.
func ggmlAVX2Dot(_ type: WeightType, _ w: [UInt8], _ a: [UInt8], count: Int) -> Float? {
    var acc = [Float](repeating: 0, count: 8)
    func fma(_ d: Float, _ lanes: [Int32]) { for l in 0..<8 { acc[l] = acc[l].addingProduct(d, Float(lanes[l])) } }
    switch type {
    case .f32, .f16, .bf16:
        return nil
    case .q4_0, .q5_0, .q8_0, .q4_1, .q5_1:
        let bb = type.blockBytes, ab = type.activationType.blockBytes, qo = type.activationType == .q8_1 ? 4 : 2
        var summs: Float = 0
        for b in 0..<(count / 32) {
            let x = b * bb, o = b * ab
            var g = Group()
            for e in 0..<32 { g.y[e] = int8(a, o + qo + e) }
            for j in 0..<16 {
                switch type {
                case .q4_0:
                    g.q[j] = Int32(w[x + 2 + j] & 15) - 8; g.q[j + 16] = Int32(w[x + 2 + j] >> 4) - 8
                case .q4_1:
                    g.q[j] = Int32(w[x + 4 + j] & 15); g.q[j + 16] = Int32(w[x + 4 + j] >> 4)
                case .q5_0, .q5_1:
                    let hOffset = type == .q5_0 ? 2 : 4
                    let qh = u32(w, x + hOffset)
                    let lo = Int32(w[x + hOffset + 4 + j] & 15) | Int32((qh >> j) & 1) << 4
                    let hi = Int32(w[x + hOffset + 4 + j] >> 4) | Int32((qh >> (j + 16)) & 1) << 4
                    g.q[j] = type == .q5_0 ? lo - 16 : lo; g.q[j + 16] = type == .q5_0 ? hi - 16 : hi
                default:
                    g.q[j] = int8(w, x + 2 + j); g.q[j + 16] = int8(w, x + 18 + j)
                }
            }
            if type == .q4_1 || type == .q5_1 { summs += half(w, x + 2) * half(a, o + 2) }
            fma(half(w, x) * half(a, o), g.lanes)
        }
        return ggmlHsum8(acc) + summs
    case .q4_K, .q5_K:
        var accm = [Float](repeating: 0, count: 4)
        var summs: Float = 0
        for b in 0..<(count / 256) {
            let x = b * type.blockBytes, o = b * 292
            let scales = w[(x + 4)..<(x + 16)]
            var sumi = [Int32](repeating: 0, count: 8)
            for sub in 0..<8 {
                var g = Group()
                let (sc, _) = scaleMinK4(sub, scales)
                let chunk = sub / 2, high = sub % 2 == 1
                for e in 0..<32 {
                    let byte = w[x + (type == .q5_K ? 48 : 16) + 32 * chunk + e]
                    var q = Int32(high ? byte >> 4 : byte & 15)
                    let bit = 2 * chunk + (high ? 1 : 0)
                    if type == .q5_K && (w[x + 16 + e] >> UInt8(bit)) & 1 == 1 { q += 16 }
                    g.q[e] = q; g.scale[e] = Int32(sc); g.y[e] = int8(a, o + 4 + 32 * sub + e)
                }
                for (l, v) in g.lanes.enumerated() { sumi[l] += v }
            }
            // madd(mins, hadd(bsums)): lane k = m[2k] * s[2k] + m[2k+1] * s[2k+1], s = 32-value sums.
            let mins = (0..<8).map { Int32(scaleMinK4($0, scales).1) }
            var sums32 = [Int32](repeating: 0, count: 8)
            for g in 0..<8 { sums32[g] = i16(a, o + 260 + 4 * g) + i16(a, o + 262 + 4 * g) }
            var prod = [Int32](repeating: 0, count: 4)
            for k in 0..<4 {
                let p0: Int32 = mins[2 * k] * sums32[2 * k]
                let p1: Int32 = mins[2 * k + 1] * sums32[2 * k + 1]
                prod[k] = p0 + p1
            }
            let yd = f32(a, o)
            let dmin = -yd * half(w, x + 2)
            if type == .q4_K {
                for k in 0..<4 { accm[k] = accm[k].addingProduct(dmin, Float(prod[k])) }
            } else {
                summs += dmin * Float(prod.reduce(0, +))
            }
            fma(yd * half(w, x), sumi)
        }
        return ggmlHsum8(acc) + (type == .q4_K ? (accm[0] + accm[2]) + (accm[1] + accm[3]) : summs)
    case .q6_K:
        for b in 0..<(count / 256) {
            let x = b * 210, o = b * 292
            var sumi = [Int32](repeating: 0, count: 8)
            for n in 0..<2 {
                for k in 0..<4 {
                    var g = Group()
                    for l in 0..<32 {
                        let ql = w[x + 64 * n + 32 * (k & 1) + l], qh = w[x + 128 + 32 * n + l]
                        let low = k < 2 ? ql & 15 : ql >> 4
                        g.q[l] = Int32(low | ((qh >> (2 * k)) & 3) << 4)
                        g.scale[l] = int8(w, x + 192 + 8 * n + 2 * k + l / 16)
                        g.y[l] = int8(a, o + 4 + 128 * n + 32 * k + l)
                    }
                    for (l, v) in g.lanes.enumerated() { sumi[l] += v }
                }
            }
            // The - 32 offset: 32 x madd(bsums, scales), lane i from 16-value groups 2i and 2i + 1.
            for l in 0..<8 {
                let p0: Int32 = i16(a, o + 260 + 4 * l) * int8(w, x + 192 + 2 * l)
                let p1: Int32 = i16(a, o + 262 + 4 * l) * int8(w, x + 193 + 2 * l)
                sumi[l] -= 32 * (p0 + p1)
            }
            fma(f32(a, o) * half(w, x + 208), sumi)
        }
        return ggmlHsum8(acc)
    }
}

// MARK: - Repacked and tiled K-quant arithmetic

/// Exact integer sums of one K-quant weight block against one Q8_K block, per 32-value group
/// (Q4_K/Q5_K: scale x q x q8 and min x group sum) or for the whole block (Q6_K: scale x (q - 32) x q8).
private func kBlockIntegers(_ type: WeightType, _ w: [UInt8], _ x: Int, _ a: [UInt8], _ o: Int) -> (i: [Int64], m: [Int64]) {
    switch type {
    case .q4_K, .q5_K:
        let scales = w[(x + 4)..<(x + 16)]
        var i = [Int64](repeating: 0, count: 8), m = [Int64](repeating: 0, count: 8)
        for sub in 0..<8 {
            let (sc, mn) = scaleMinK4(sub, scales)
            let chunk = sub / 2, high = sub % 2 == 1
            var s: Int64 = 0, ys: Int64 = 0
            for e in 0..<32 {
                let byte = w[x + (type == .q5_K ? 48 : 16) + 32 * chunk + e]
                var q = Int64(high ? byte >> 4 : byte & 15)
                if type == .q5_K && (w[x + 16 + e] >> UInt8(2 * chunk + (high ? 1 : 0))) & 1 == 1 { q += 16 }
                let y = Int64(int8(a, o + 4 + 32 * sub + e))
                s += q * y
                ys += y
            }
            i[sub] = Int64(sc) * s
            m[sub] = Int64(mn) * ys
        }
        return (i, m)
    default:
        var total: Int64 = 0
        for n in 0..<2 {
            for k in 0..<4 {
                for l in 0..<32 {
                    let ql = w[x + 64 * n + 32 * (k & 1) + l], qh = w[x + 128 + 32 * n + l]
                    let low = k < 2 ? ql & 15 : ql >> 4
                    let q = Int64(low | ((qh >> (2 * k)) & 3) << 4) - 32
                    total += Int64(int8(w, x + 192 + 8 * n + 2 * k + l / 16)) * q * Int64(int8(a, o + 4 + 128 * n + 32 * k + l))
                }
            }
        }
        return ([total], [0])
    }
}

/// llama.cpp's repacked Q4_K products (`ggml_gemv_q4_K_8x8_q8_K` when `grouped` is false,
/// `ggml_gemm_q4_K_8x8_q8_K` for rows in groups of four) and its tiled K-quant matmul.
func ggmlBatchedDot(_ type: WeightType, _ arithmetic: BatchArithmetic, grouped: Bool, _ w: [UInt8], _ a: [UInt8], count: Int) -> Float {
    var acc: Float = 0, accm: Float = 0
    for b in 0..<(count / 256) {
        let x = b * type.blockBytes, o = b * 292
        let (i, m) = kBlockIntegers(type, w, x, a, o)
        let yd = f32(a, o)
        let d = type == .q6_K ? half(w, x + 208) : half(w, x)
        let dmin = type == .q6_K ? 0 : half(w, x + 2)
        switch arithmetic {
        case .repacked:
            // per 64 values (gemm) or per block (gemv)
            let steps = grouped ? 4 : 1
            for j in 0..<steps {
                let range = grouped ? (2 * j)..<(2 * j + 2) : 0..<8
                let ij = range.reduce(Int64(0)) { $0 + i[$1] }, mj = range.reduce(Int64(0)) { $0 + m[$1] }
                acc = acc.addingProduct(Float(ij), d * yd)
                accm = accm.addingProduct(Float(mj), dmin * yd)
            }
        case .tiled:
            var res = d * Float(i.reduce(0, +))
            if type != .q6_K { res = res.addingProduct(-dmin, Float(m.reduce(0, +))) }
            acc = acc.addingProduct(res, yd)
        case .vecDot:
            fatalError("use ggmlAVX2Dot")
        }
    }
    return arithmetic == .repacked ? acc - accm : acc
}
