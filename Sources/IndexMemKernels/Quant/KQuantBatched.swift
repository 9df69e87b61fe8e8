// IndexMem — kernels. Apache-2.0.
//
// llama.cpp's CPU backend does not multiply every K-quant matrix with `ggml_vec_dot_*`:
//   * Q4_K matrices whose row count is a multiple of 8 are repacked at load time (the
//     `CPU_REPACK` buffer, `block_q4_Kx8`) and multiplied by `ggml_gemv/gemm_q4_K_8x8_q8_K`
//     for every batch size. Per output, each 256-value block gives one exact integer sum I
//     (scales x q x q8) and one M (minimums x group sums), and the floats are two scalar FMA
//     chains: `acc = fma(float(I), d * d_a, acc)`, `accm = fma(float(M), dmin * d_a, accm)`,
//     result `acc - accm`. Activation rows in whole groups of four are quantized by
//     `ggml_quantize_mat_q8_K_4x8`, which breaks a +max/-max tie towards +max (see
//     `ActivationQuantizer.quantizeQ8_K(positiveTies:)`).
//   * Other Q4_K, Q5_K and Q6_K matrices go through the tiled K-quant matmul
//     (`ggml-cpu/tiled`) when the batch has at least 8 rows: per block
//     `res = d * float(I)` (minus `dmin * float(M)`, fused, for Q4_K/Q5_K), then
//     `out = fma(res, d_a, out)`.
//   * Smaller batches of non-repacked matrices use `ggml_vec_dot_*` (8-lane accumulators).
// The integer sums are the same in all three; only the float steps differ, and they are
// reproduced here so that prefill logits match llama.cpp's bit for bit.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Arithmetic selection

/// Which of llama.cpp's float arithmetics a matrix product reproduces.
public enum BatchArithmetic: Sendable, Equatable {
    /// `ggml_vec_dot_*` (and tinyBLAS, whose arithmetic is the same for the 32-value formats).
    case vecDot
    /// The repacked Q4_K gemv/gemm (`q4_K_8x8_q8_K`).
    case repacked
    /// The tiled K-quant matmul (`ggml-cpu/tiled`), batches of 8 rows or more.
    case tiled
}

extension WeightType {
    /// The arithmetic llama.cpp's x86 AVX2 CPU backend uses for a product of a matrix of this
    /// type with `tokens` activation rows.
    /// - Parameters:
    ///   - rows: the matrix's output dimension.
    ///   - repackable: whether llama.cpp would place the matrix in its repack buffer (every
    ///     matrix-product weight; not the token embedding when the output layer reuses it).
    public func batchArithmetic(rows: Int, tokens: Int, repackable: Bool) -> BatchArithmetic {
        switch self {
        case .q4_K:
            if repackable && rows % 8 == 0 { return .repacked }
            return tokens >= 8 ? .tiled : .vecDot
        case .q5_K, .q6_K:
            return tokens >= 8 ? .tiled : .vecDot
        default:
            return .vecDot
        }
    }
}

// MARK: - Q4_K

extension Q4_K {
    /// Per-block exact integer sums of one weight block against four Q8_K blocks:
    /// I = sum of scale x q x q8, M = sum of min x (sum of the 32 q8 of its group).
    @inlinable @inline(__always)
    static func blockSums4(_ x: UnsafeRawPointer, _ y0: UnsafeRawPointer, _ y1: UnsafeRawPointer,
                           _ y2: UnsafeRawPointer, _ y3: UnsafeRawPointer) -> (SIMD4<Int32>, SIMD4<Int32>) {
        #if arch(x86_64)
        let m4 = _mm256_set1_epi8(0x0f)
        let (scales, mins) = kScalesAndMinsAVX2(x + 4)
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
        for j in 0..<4 {
            let bits = loadBytes(x + 16 + 32 * j)
            let lo = _mm256_and_si256(bits, m4)
            let sl = kScaleShuffle(scales, 2 * j)
            let o = 4 + 64 * j
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y0 + o))))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y1 + o))))
            s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y2 + o))))
            s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y3 + o))))
            let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4)
            let sh = kScaleShuffle(scales, 2 * j + 1)
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y0 + o + 32))))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y1 + o + 32))))
            s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y2 + o + 32))))
            s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y3 + o + 32))))
        }
        @inline(__always) func m(_ y: UnsafeRawPointer) -> Int32 { unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum() }
        return (SIMD4(hsumInt(s0), hsumInt(s1), hsumInt(s2), hsumInt(s3)), SIMD4(m(y0), m(y1), m(y2), m(y3)))
        #else
        let a = blockSumsPortable(x, y0), b = blockSumsPortable(x, y1), c = blockSumsPortable(x, y2), d = blockSumsPortable(x, y3)
        return (SIMD4(a.0, b.0, c.0, d.0), SIMD4(a.1, b.1, c.1, d.1))
        #endif
    }

    /// Per-block exact integer sums against one Q8_K block.
    @inlinable @inline(__always)
    static func blockSums(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> (Int32, Int32) {
        #if arch(x86_64)
        let m4 = _mm256_set1_epi8(0x0f)
        let (scales, mins) = kScalesAndMinsAVX2(x + 4)
        var s = _mm256_setzero_si256()
        for j in 0..<4 {
            let bits = loadBytes(x + 16 + 32 * j)
            let lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4)
            s = _mm256_add_epi32(s, _mm256_madd_epi16(kScaleShuffle(scales, 2 * j), _mm256_maddubs_epi16(lo, loadBytes(y + 4 + 64 * j))))
            s = _mm256_add_epi32(s, _mm256_madd_epi16(kScaleShuffle(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, loadBytes(y + 36 + 64 * j))))
        }
        return (hsumInt(s), unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum())
        #else
        return blockSumsPortable(x, y)
        #endif
    }

    @inlinable @inline(__always)
    static func blockSumsPortable(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> (Int32, Int32) {
        let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
        var isum: Int32 = 0
        for j in 0..<4 {
            let bytes = (x + 16 + 32 * j).loadUnaligned(as: SIMD32<UInt8>.self)
            let lo = SIMD32<Int32>(truncatingIfNeeded: bytes & 0x0f), hi = SIMD32<Int32>(truncatingIfNeeded: bytes &>> 4)
            let ylo = SIMD32<Int32>(truncatingIfNeeded: (y + 4 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
            let yhi = SIMD32<Int32>(truncatingIfNeeded: (y + 36 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
            isum &+= Int32(sm[2 * j]) &* (lo &* ylo).wrappedSum() &+ Int32(sm[2 * j + 1]) &* (hi &* yhi).wrappedSum()
        }
        return (isum, kMinSum(sm, y))
    }

    /// Integer sums of the four 64-value sub-blocks of one weight block against four Q8_K
    /// blocks: `i[j]` = scale x q x q8 over sub-block j's two 32-value groups, `m[j]` = their
    /// minimums x group sums (lanes: the four activation rows).
    @inlinable @inline(__always)
    static func subBlockSums4(_ x: UnsafeRawPointer, _ y0: UnsafeRawPointer, _ y1: UnsafeRawPointer,
                              _ y2: UnsafeRawPointer, _ y3: UnsafeRawPointer)
        -> (i: (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>), m: (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>)) {
        let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
        // Minimums x 32-value group sums, per sub-block j: m[2j] g[2j] + m[2j+1] g[2j+1].
        let mins = SIMD8<Int32>(truncatingIfNeeded: sm.highHalf)
        @inline(__always) func groupSums(_ y: UnsafeRawPointer) -> SIMD4<Int32> {
            let b = SIMD16<Int32>(truncatingIfNeeded: (y + 260).loadUnaligned(as: SIMD16<Int16>.self))
            let g = SIMD8<Int32>(b[0] &+ b[1], b[2] &+ b[3], b[4] &+ b[5], b[6] &+ b[7],
                                 b[8] &+ b[9], b[10] &+ b[11], b[12] &+ b[13], b[14] &+ b[15]) &* mins
            return SIMD4(g[0] &+ g[1], g[2] &+ g[3], g[4] &+ g[5], g[6] &+ g[7])
        }
        let g0 = groupSums(y0), g1 = groupSums(y1), g2 = groupSums(y2), g3 = groupSums(y3)
        let m = (SIMD4(g0[0], g1[0], g2[0], g3[0]), SIMD4(g0[1], g1[1], g2[1], g3[1]),
                 SIMD4(g0[2], g1[2], g2[2], g3[2]), SIMD4(g0[3], g1[3], g2[3], g3[3]))
        #if arch(x86_64)
        let m4 = _mm256_set1_epi8(0x0f)
        let (scales, _) = kScalesAndMinsAVX2(x + 4)
        @inline(__always) func sub(_ j: Int) -> SIMD4<Int32> {
            let bits = loadBytes(x + 16 + 32 * j)
            let lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4)
            let sl = kScaleShuffle(scales, 2 * j), sh = kScaleShuffle(scales, 2 * j + 1)
            let o = 4 + 64 * j
            @inline(__always) func i(_ y: UnsafeRawPointer) -> __m256i {
                _mm256_add_epi32(_mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y + o))),
                                 _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y + o + 32))))
            }
            return hsumInt4(i(y0), i(y1), i(y2), i(y3))
        }
        return ((sub(0), sub(1), sub(2), sub(3)), m)
        #else
        @inline(__always) func sub(_ j: Int) -> SIMD4<Int32> {
            let bytes = (x + 16 + 32 * j).loadUnaligned(as: SIMD32<UInt8>.self)
            let lo = SIMD32<Int32>(truncatingIfNeeded: bytes & 0x0f), hi = SIMD32<Int32>(truncatingIfNeeded: bytes &>> 4)
            @inline(__always) func i(_ y: UnsafeRawPointer) -> Int32 {
                let ylo = SIMD32<Int32>(truncatingIfNeeded: (y + 4 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
                let yhi = SIMD32<Int32>(truncatingIfNeeded: (y + 36 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
                return Int32(sm[2 * j]) &* (lo &* ylo).wrappedSum() &+ Int32(sm[2 * j + 1]) &* (hi &* yhi).wrappedSum()
            }
            return SIMD4(i(y0), i(y1), i(y2), i(y3))
        }
        return ((sub(0), sub(1), sub(2), sub(3)), m)
        #endif
    }

    /// One weight row against four Q8_K rows with llama.cpp's `arithmetic`. For `.repacked`
    /// this is `ggml_gemm_q4_K_8x8_q8_K`, whose float steps run per 64-value sub-block
    /// (`ggml_gemv_q4_K_8x8_q8_K`, one row, runs them per 256-value block: see `dot`).
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int,
                            arithmetic: BatchArithmetic) -> SIMD4<Float> {
        if arithmetic == .vecDot { return dot4(w, a, aStride: aStride, count: count) }
        var acc = SIMD4<Float>(), accm = SIMD4<Float>()
        if arithmetic == .repacked {
            for b in 0..<(count / 256) {
                let x = w + b * 144
                let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
                let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                      y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
                let dd = Half.toFloat(x.loadUnaligned(as: UInt16.self)) * yd
                let dm = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * yd
                let (i, m) = subBlockSums4(x, y0, y1, y2, y3)
                acc = acc.addingProduct(SIMD4<Float>(i.0), dd); accm = accm.addingProduct(SIMD4<Float>(m.0), dm)
                acc = acc.addingProduct(SIMD4<Float>(i.1), dd); accm = accm.addingProduct(SIMD4<Float>(m.1), dm)
                acc = acc.addingProduct(SIMD4<Float>(i.2), dd); accm = accm.addingProduct(SIMD4<Float>(m.2), dm)
                acc = acc.addingProduct(SIMD4<Float>(i.3), dd); accm = accm.addingProduct(SIMD4<Float>(m.3), dm)
            }
            return acc - accm
        }
        for b in 0..<(count / 256) {
            let x = w + b * 144
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let (i, m) = blockSums4(x, y0, y1, y2, y3)
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)), dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            if arithmetic == .repacked {
                acc = acc.addingProduct(SIMD4<Float>(i), d * yd)
                accm = accm.addingProduct(SIMD4<Float>(m), dmin * yd)
            } else {
                let res = (d * SIMD4<Float>(i)).addingProduct(SIMD4(repeating: -dmin), SIMD4<Float>(m))
                acc = acc.addingProduct(res, yd)
            }
        }
        return arithmetic == .repacked ? acc - accm : acc
    }

    /// One weight row against one Q8_K row with llama.cpp's `arithmetic`.
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int, arithmetic: BatchArithmetic) -> Float {
        if arithmetic == .vecDot { return dot(w, a, count: count) }
        var acc: Float = 0, accm: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 144, y = a + b * 292
            let (i, m) = blockSums(x, y)
            let yd = y.loadUnaligned(as: Float.self)
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)), dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            if arithmetic == .repacked {
                acc = acc.addingProduct(Float(i), d * yd)
                accm = accm.addingProduct(Float(m), dmin * yd)
            } else {
                let res = (d * Float(i)).addingProduct(-dmin, Float(m))
                acc = acc.addingProduct(res, yd)
            }
        }
        return arithmetic == .repacked ? acc - accm : acc
    }
}

// MARK: - Q5_K

extension Q5_K {
    @inlinable @inline(__always)
    static func blockSums(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> (Int32, Int32) {
        #if arch(x86_64)
        let (scales, mins) = kScalesAndMinsAVX2(x + 4)
        var h = loadBytes(x + 16)
        var s = _mm256_setzero_si256()
        for j in 0..<4 {
            let (lo, hi) = weightsAVX2(x, h, j)
            h = _mm256_srli_epi16(h, 2)
            s = _mm256_add_epi32(s, _mm256_madd_epi16(kScaleShuffle(scales, 2 * j), _mm256_maddubs_epi16(lo, loadBytes(y + 4 + 64 * j))))
            s = _mm256_add_epi32(s, _mm256_madd_epi16(kScaleShuffle(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, loadBytes(y + 36 + 64 * j))))
        }
        return (hsumInt(s), unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum())
        #else
        return blockSumsPortable(x, y)
        #endif
    }

    @inlinable @inline(__always)
    static func blockSumsPortable(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> (Int32, Int32) {
        let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
        let qh = (x + 16).loadUnaligned(as: SIMD32<UInt8>.self)
        var isum: Int32 = 0
        for j in 0..<4 {
            let (lo8, hi8) = values(x, qh, j)
            let lo = SIMD32<Int32>(truncatingIfNeeded: lo8), hi = SIMD32<Int32>(truncatingIfNeeded: hi8)
            let ylo = SIMD32<Int32>(truncatingIfNeeded: (y + 4 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
            let yhi = SIMD32<Int32>(truncatingIfNeeded: (y + 36 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
            isum &+= Int32(sm[2 * j]) &* (lo &* ylo).wrappedSum() &+ Int32(sm[2 * j + 1]) &* (hi &* yhi).wrappedSum()
        }
        return (isum, kMinSum(sm, y))
    }

    @inlinable @inline(__always)
    static func blockSums4(_ x: UnsafeRawPointer, _ y0: UnsafeRawPointer, _ y1: UnsafeRawPointer,
                           _ y2: UnsafeRawPointer, _ y3: UnsafeRawPointer) -> (SIMD4<Int32>, SIMD4<Int32>) {
        #if arch(x86_64)
        let (scales, mins) = kScalesAndMinsAVX2(x + 4)
        var h = loadBytes(x + 16)
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
        for j in 0..<4 {
            let (lo, hi) = weightsAVX2(x, h, j)
            h = _mm256_srli_epi16(h, 2)
            let o = 4 + 64 * j
            let sl = kScaleShuffle(scales, 2 * j)
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y0 + o))))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y1 + o))))
            s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y2 + o))))
            s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, loadBytes(y3 + o))))
            let sh = kScaleShuffle(scales, 2 * j + 1)
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y0 + o + 32))))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y1 + o + 32))))
            s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y2 + o + 32))))
            s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, loadBytes(y3 + o + 32))))
        }
        @inline(__always) func m(_ y: UnsafeRawPointer) -> Int32 { unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum() }
        return (SIMD4(hsumInt(s0), hsumInt(s1), hsumInt(s2), hsumInt(s3)), SIMD4(m(y0), m(y1), m(y2), m(y3)))
        #else
        let a = blockSumsPortable(x, y0), b = blockSumsPortable(x, y1), c = blockSumsPortable(x, y2), d = blockSumsPortable(x, y3)
        return (SIMD4(a.0, b.0, c.0, d.0), SIMD4(a.1, b.1, c.1, d.1))
        #endif
    }

    /// One weight row against four Q8_K rows with llama.cpp's `arithmetic` (`.tiled` or `.vecDot`).
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int,
                            arithmetic: BatchArithmetic) -> SIMD4<Float> {
        if arithmetic == .vecDot { return dot4(w, a, aStride: aStride, count: count) }
        var acc = SIMD4<Float>()
        for b in 0..<(count / 256) {
            let x = w + b * 176
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let (i, m) = blockSums4(x, y0, y1, y2, y3)
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)), dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let res = (d * SIMD4<Float>(i)).addingProduct(SIMD4(repeating: -dmin), SIMD4<Float>(m))
            acc = acc.addingProduct(res, yd)
        }
        return acc
    }

    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int, arithmetic: BatchArithmetic) -> Float {
        if arithmetic == .vecDot { return dot(w, a, count: count) }
        var acc: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 176, y = a + b * 292
            let (i, m) = blockSums(x, y)
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)), dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let res = (d * Float(i)).addingProduct(-dmin, Float(m))
            acc = acc.addingProduct(res, y.loadUnaligned(as: Float.self))
        }
        return acc
    }
}

// MARK: - Q6_K

extension Q6_K {
    /// I = sum of scale x (q - 32) x q8 over one block.
    @inlinable @inline(__always)
    static func blockSum(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> Int32 {
        #if arch(x86_64)
        let m32 = _mm256_set1_epi8(32)
        let sc = scalesAVX2(x)
        var sumi = _mm256_setzero_si256()
        for n in 0..<2 {
            let half = n == 0 ? sc.first : sc.second
            let q = weightsAVX2(x, n)
            let o = 4 + 128 * n
            @inline(__always) func group(_ q: __m256i, _ k: Int) -> __m256i {
                let y8 = loadBytes(y + o + 32 * k)
                let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y8), _mm256_maddubs_epi16(m32, y8))
                return _mm256_madd_epi16(scaleShuffle(half, k), p16)
            }
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(group(q.0, 0), group(q.1, 1)), _mm256_add_epi32(group(q.2, 2), group(q.3, 3))))
        }
        return hsumInt(sumi)
        #else
        return blockSumPortable(x, y)
        #endif
    }

    @inlinable @inline(__always)
    static func blockSumPortable(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> Int32 {
        var isum: Int32 = 0
        for n in 0..<2 {
            for k in 0..<4 {
                let q = SIMD32<Int32>(truncatingIfNeeded: values(x, n, k)) &- 32
                let yq = SIMD32<Int32>(truncatingIfNeeded: (y + 4 + 128 * n + 32 * k).loadUnaligned(as: SIMD32<Int8>.self))
                let p = q &* yq
                let g = 8 * n + 2 * k
                isum &+= Int32(x.load(fromByteOffset: 192 + g, as: Int8.self)) &* p.lowHalf.wrappedSum()
                isum &+= Int32(x.load(fromByteOffset: 193 + g, as: Int8.self)) &* p.highHalf.wrappedSum()
            }
        }
        return isum
    }

    @inlinable @inline(__always)
    static func blockSums4(_ x: UnsafeRawPointer, _ y0: UnsafeRawPointer, _ y1: UnsafeRawPointer,
                           _ y2: UnsafeRawPointer, _ y3: UnsafeRawPointer) -> SIMD4<Int32> {
        #if arch(x86_64)
        let m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30), m32 = _mm256_set1_epi8(32)
        let sc = scalesAVX2(x)
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
        for n in 0..<2 {
            let half = n == 0 ? sc.first : sc.second
            let b1 = loadBytes(x + 64 * n), b2 = loadBytes(x + 64 * n + 32), h = loadBytes(x + 128 + 32 * n)
            for k in 0..<4 {
                let low: __m256i
                let high: __m256i
                switch k {
                case 0: low = _mm256_and_si256(b1, m4); high = _mm256_slli_epi16(h, 4)
                case 1: low = _mm256_and_si256(b2, m4); high = _mm256_slli_epi16(h, 2)
                case 2: low = _mm256_and_si256(_mm256_srli_epi16(b1, 4), m4); high = h
                default: low = _mm256_and_si256(_mm256_srli_epi16(b2, 4), m4); high = _mm256_srli_epi16(h, 2)
                }
                let q = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_and_si256(high, m30)), m32)
                let aq = _mm256_sign_epi8(q, q)
                let s = scaleShuffle(half, k)
                let o = 4 + 128 * n + 32 * k
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(s, _mm256_maddubs_epi16(aq, _mm256_sign_epi8(loadBytes(y0 + o), q))))
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(s, _mm256_maddubs_epi16(aq, _mm256_sign_epi8(loadBytes(y1 + o), q))))
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(s, _mm256_maddubs_epi16(aq, _mm256_sign_epi8(loadBytes(y2 + o), q))))
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(s, _mm256_maddubs_epi16(aq, _mm256_sign_epi8(loadBytes(y3 + o), q))))
            }
        }
        return SIMD4(hsumInt(s0), hsumInt(s1), hsumInt(s2), hsumInt(s3))
        #else
        return SIMD4(blockSumPortable(x, y0), blockSumPortable(x, y1), blockSumPortable(x, y2), blockSumPortable(x, y3))
        #endif
    }

    /// One weight row against four Q8_K rows with llama.cpp's `arithmetic` (`.tiled` or `.vecDot`).
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int,
                            arithmetic: BatchArithmetic) -> SIMD4<Float> {
        if arithmetic == .vecDot { return dot4(w, a, aStride: aStride, count: count) }
        var acc = SIMD4<Float>()
        for b in 0..<(count / 256) {
            let x = w + b * 210
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let i = blockSums4(x, y0, y1, y2, y3)
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let d = Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
            acc = acc.addingProduct(d * SIMD4<Float>(i), yd)
        }
        return acc
    }

    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int, arithmetic: BatchArithmetic) -> Float {
        if arithmetic == .vecDot { return dot(w, a, count: count) }
        var acc: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 210, y = a + b * 292
            let d = Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
            acc = acc.addingProduct(d * Float(blockSum(x, y)), y.loadUnaligned(as: Float.self))
        }
        return acc
    }
}

#if arch(x86_64)
/// Four horizontal int32 sums at once (exact; the order of integer additions does not matter).
@inlinable @inline(__always)
func hsumInt4(_ a: __m256i, _ b: __m256i, _ c: __m256i, _ d: __m256i) -> SIMD4<Int32> {
    let ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d)
    let abcd = _mm256_hadd_epi32(ab, cd)  // per 128-bit lane: a, b, c, d partial sums
    return unsafeBitCast(_mm_add_epi32(abcd.lowHalf, abcd.highHalf), to: SIMD4<Int32>.self)
}
#endif
