// IndexMem — kernels. Apache-2.0.
//
// Q4_K (ggml `block_q4_K`, 144 bytes per 256 values): f16 super-scale d, f16 super-minimum
// dmin, 12 bytes packing eight 6-bit scales and eight 6-bit minimums (one pair per 32 values,
// ggml's `get_scale_min_k4`), then 128 bytes of nibbles in four 32-byte chunks: chunk j holds
// values 64j..64j+31 in its low nibbles and 64j+32..64j+63 in its high nibbles.
// Value = d * scale * q - dmin * min. Dot products use Q8_K activations (f32 d, 256 x int8,
// 16 x int16 sums of 16 values); the minimums meet the activation group sums.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q4_K

public enum Q4_K {
    public static let blockBytes = 144

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 256) {
            let x = src + b * 144
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self))
            let dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
            let out = UnsafeMutableRawPointer(dst + b * 256)
            for j in 0..<4 {
                let bytes = (x + 16 + 32 * j).loadUnaligned(as: SIMD32<UInt8>.self)
                let d1 = d * Float(sm[2 * j]), m1 = dmin * Float(sm[8 + 2 * j])
                let d2 = d * Float(sm[2 * j + 1]), m2 = dmin * Float(sm[9 + 2 * j])
                out.storeBytes(of: SIMD32<Float>(bytes & 0x0f) * d1 - m1, toByteOffset: 256 * j, as: SIMD32<Float>.self)
                out.storeBytes(of: SIMD32<Float>(bytes &>> 4) * d2 - m2, toByteOffset: 256 * j + 128, as: SIMD32<Float>.self)
            }
        }
    }

    /// Dot product of a Q4_K weight row with Q8_K activations.
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        #if arch(x86_64)
        return dotAVX2(w, a, count: count)
        #else
        return dotPortable(w, a, count: count)
        #endif
    }

    /// Per block: exact integer sums of scale * q * q8 and of min * group sum, then
    /// `d_a * d * sum - d_a * dmin * summ` (ggml's `ggml_vec_dot_q4_K_q8_K` arithmetic).
    @inlinable
    public static func dotPortable(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var sum: Float = 0, summ: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 144, y = a + b * 292
            let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
            var isum: Int32 = 0
            for j in 0..<4 {
                let bytes = (x + 16 + 32 * j).loadUnaligned(as: SIMD32<UInt8>.self)
                let lo = SIMD32<Int32>(truncatingIfNeeded: bytes & 0x0f), hi = SIMD32<Int32>(truncatingIfNeeded: bytes &>> 4)
                let ylo = SIMD32<Int32>(truncatingIfNeeded: (y + 4 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
                let yhi = SIMD32<Int32>(truncatingIfNeeded: (y + 36 + 64 * j).loadUnaligned(as: SIMD32<Int8>.self))
                isum &+= Int32(sm[2 * j]) &* (lo &* ylo).wrappedSum() &+ Int32(sm[2 * j + 1]) &* (hi &* yhi).wrappedSum()
            }
            let msum = kMinSum(sm, y)
            let yd = y.loadUnaligned(as: Float.self)
            sum += yd * Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Float(isum)
            summ += yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * Float(msum)
        }
        return sum - summ
    }

    #if arch(x86_64)
    /// ggml's AVX2 arithmetic: per block `acc = fma(d_a * d, float(sumi), acc)` over 8 int32
    /// lanes and `acc_m = fma(-d_a * dmin, float(mins x pair sums), acc_m)` over 4, then
    /// `hsum_float_8(acc) + ((m0 + m2) + (m1 + m3))`.
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        let m4 = _mm256_set1_epi8(0x0f)
        var acc = _mm256_setzero_ps(), accm = _mm_setzero_ps()
        for b in 0..<(count / 256) {
            let x = w + b * 144, y = a + b * 292
            let (scales, mins) = kScalesAndMinsAVX2(x + 4)
            var sumi = _mm256_setzero_si256()
            for j in 0..<4 {
                let bits = loadBytes(x + 16 + 32 * j)
                let lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4)
                let pl = _mm256_madd_epi16(kScaleShuffle(scales, 2 * j), _mm256_maddubs_epi16(lo, loadBytes(y + 4 + 64 * j)))
                let ph = _mm256_madd_epi16(kScaleShuffle(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, loadBytes(y + 36 + 64 * j)))
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph))
            }
            let yd = y.loadUnaligned(as: Float.self)
            let dmin = -yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(kMinProducts(mins, y)), accm)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * Half.toFloat(x.loadUnaligned(as: UInt16.self))), _mm256_cvtepi32_ps(sumi), acc)
        }
        return hsum(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]))
    }
    #endif

    /// One weight row against four Q8_K activation rows; bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        #if arch(x86_64)
        let m4 = _mm256_set1_epi8(0x0f)
        var acc = BlockAccumulator4()
        var m0 = _mm_setzero_ps(), m1 = _mm_setzero_ps(), m2 = _mm_setzero_ps(), m3 = _mm_setzero_ps()
        for b in 0..<(count / 256) {
            let x = w + b * 144
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
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
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let dmin = -yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            m0 = _mm_fmadd_ps(_mm_set1_ps(dmin[0]), _mm_cvtepi32_ps(kMinProducts(mins, y0)), m0)
            m1 = _mm_fmadd_ps(_mm_set1_ps(dmin[1]), _mm_cvtepi32_ps(kMinProducts(mins, y1)), m1)
            m2 = _mm_fmadd_ps(_mm_set1_ps(dmin[2]), _mm_cvtepi32_ps(kMinProducts(mins, y2)), m2)
            m3 = _mm_fmadd_ps(_mm_set1_ps(dmin[3]), _mm_cvtepi32_ps(kMinProducts(mins, y3)), m3)
            let d = yd * Half.toFloat(x.loadUnaligned(as: UInt16.self))
            acc.add(d, _mm256_cvtepi32_ps(s0), _mm256_cvtepi32_ps(s1), _mm256_cvtepi32_ps(s2), _mm256_cvtepi32_ps(s3))
        }
        @inline(__always) func reduce(_ m: SIMD4<Float>) -> Float { (m[0] + m[2]) + (m[1] + m[3]) }
        return acc.result() + SIMD4(reduce(m0), reduce(m1), reduce(m2), reduce(m3))
        #else
        return SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
                     dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
        #endif
    }
}

// MARK: - Shared helpers of Q4_K and Q5_K

/// The eight 6-bit scales (bytes 0..<8) and eight 6-bit minimums (bytes 8..<16) packed in
/// the 12 bytes at `p`, unpacked as ggml does with `kmask1..3`: scale j < 4 is `q[j] & 63`,
/// min j < 4 is `q[j + 4] & 63`; for j >= 4 the low four bits come from `q[j + 4]` and the
/// top two from bits 6-7 of `q[j - 4]` (scales) or `q[j]` (minimums).
@inlinable @inline(__always)
func kScalesAndMins(_ p: UnsafeRawPointer) -> SIMD4<UInt32> {
    let u0 = p.loadUnaligned(as: UInt32.self)
    let u1 = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let u2 = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let k1: UInt32 = 0x3f3f_3f3f, k2: UInt32 = 0x0f0f_0f0f, k3: UInt32 = 0x0303_0303
    return SIMD4(u0 & k1, (u2 & k2) | (((u0 >> 6) & k3) << 4), u1 & k1, ((u2 >> 4) & k2) | (((u1 >> 6) & k3) << 4))
}

/// Sum over the eight 32-value groups of min * (sum of the activation's q8 in the group),
/// from the Q8_K block at `y` (its group sums of 16 start at byte 260).
@inlinable @inline(__always)
func kMinSum(_ scalesAndMins: SIMD16<UInt8>, _ y: UnsafeRawPointer) -> Int32 {
    let bsums = SIMD16<Int32>(truncatingIfNeeded: (y + 260).loadUnaligned(as: SIMD16<Int16>.self))
    var s: Int32 = 0
    for g in 0..<8 { s &+= Int32(scalesAndMins[8 + g]) &* (bsums[2 * g] &+ bsums[2 * g + 1]) }
    return s
}

#if arch(x86_64)
/// Scales as 16-bit values repeated in both 128-bit lanes, and the minimums as 8 x int16.
@inlinable @inline(__always)
func kScalesAndMinsAVX2(_ p: UnsafeRawPointer) -> (__m256i, __m128i) {
    let wide = _mm256_cvtepu8_epi16(unsafeBitCast(kScalesAndMins(p), to: __m128i.self))
    return (_mm256_broadcastsi128_si256(wide.lowHalf), wide.highHalf)
}

/// Scale `i` (0..<8) of `kScalesAndMinsAVX2` in all sixteen 16-bit positions.
@inlinable @inline(__always)
func kScaleShuffle(_ scales: __m256i, _ i: Int) -> __m256i {
    _mm256_shuffle_epi8(scales, _mm256_set1_epi16(Int16(truncatingIfNeeded: (2 * i) | ((2 * i + 1) << 8))))
}

/// Minimums times the activation's 32-value group sums (pairs of its 16-value sums), as
/// 4 x int32 (`_mm_madd_epi16(mins, _mm_hadd_epi16(bsums))` in ggml).
@inlinable @inline(__always)
func kMinProducts(_ mins: __m128i, _ y: UnsafeRawPointer) -> __m128i {
    let bsums = loadBytes(y + 260)
    return _mm_madd_epi16(mins, _mm_hadd_epi16(bsums.lowHalf, bsums.highHalf))
}
#endif
