// IndexMem — kernels. Apache-2.0.
//
// Q6_K (ggml `block_q6_K`, 210 bytes per 256 values): 128 bytes ql (low four bits), 64 bytes
// qh (top two bits), 16 x int8 scales (one per 16 values), then the f16 super-scale d.
// Each 128-value half n uses ql[64n..<64n+64] and qh[32n..<32n+32]; for l < 32:
//   value 128n + l      = ql[64n + l] & 15      | (qh[32n + l] & 3) << 4
//   value 128n + l + 32 = ql[64n + l + 32] & 15 | (qh[32n + l] >> 2 & 3) << 4
//   value 128n + l + 64 = ql[64n + l] >> 4      | (qh[32n + l] >> 4 & 3) << 4
//   value 128n + l + 96 = ql[64n + l + 32] >> 4 | (qh[32n + l] >> 6) << 4
// Value = d * scale * (q - 32). Dot products use Q8_K activations.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q6_K

public enum Q6_K {
    public static let blockBytes = 210

    /// The unsigned 6-bit values (0...63) of group `k` (values 128n + 32k ..< +32) of half `n`.
    @inlinable @inline(__always)
    static func values(_ x: UnsafeRawPointer, _ n: Int, _ k: Int) -> SIMD32<UInt8> {
        let ql = (x + 64 * n + 32 * (k & 1)).loadUnaligned(as: SIMD32<UInt8>.self)
        let qh = (x + 128 + 32 * n).loadUnaligned(as: SIMD32<UInt8>.self)
        let low = k < 2 ? ql & 0x0f : ql &>> 4
        return low | (((qh &>> UInt8(2 * k)) & 3) &<< 4)
    }

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 256) {
            let x = src + b * 210
            let d = Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
            let out = UnsafeMutableRawPointer(dst + b * 256)
            for n in 0..<2 {
                for k in 0..<4 {
                    let q = SIMD32<Float>(SIMD32<Int32>(truncatingIfNeeded: values(x, n, k)) &- 32)
                    let g = 8 * n + 2 * k
                    let s0 = d * Float(x.load(fromByteOffset: 192 + g, as: Int8.self))
                    let s1 = d * Float(x.load(fromByteOffset: 193 + g, as: Int8.self))
                    let o = 512 * n + 128 * k
                    out.storeBytes(of: q.lowHalf * s0, toByteOffset: o, as: SIMD16<Float>.self)
                    out.storeBytes(of: q.highHalf * s1, toByteOffset: o + 64, as: SIMD16<Float>.self)
                }
            }
        }
    }

    /// Dot product of a Q6_K weight row with Q8_K activations.
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        #if arch(x86_64)
        return dotAVX2(w, a, count: count)
        #else
        return dotPortable(w, a, count: count)
        #endif
    }

    @inlinable
    public static func dotPortable(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var sum: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 210, y = a + b * 292
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
            sum += y.loadUnaligned(as: Float.self) * Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self)) * Float(isum)
        }
        return sum
    }

    #if arch(x86_64)
    /// The four groups of half `n` as unsigned bytes (0...63).
    @inlinable @inline(__always)
    static func weightsAVX2(_ x: UnsafeRawPointer, _ n: Int) -> (__m256i, __m256i, __m256i, __m256i) {
        let m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30)
        let b1 = loadBytes(x + 64 * n), b2 = loadBytes(x + 64 * n + 32), h = loadBytes(x + 128 + 32 * n)
        return (_mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), _mm256_and_si256(h, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30)))
    }

    /// The block's 16 scales as int16, each half of them (8) repeated in both 128-bit lanes.
    @inlinable @inline(__always)
    static func scalesAVX2(_ x: UnsafeRawPointer) -> (first: __m256i, second: __m256i) {
        let s16 = _mm256_cvtepi8_epi16((x + 192).loadUnaligned(as: __m128i.self))
        return (_mm256_broadcastsi128_si256(s16.lowHalf), _mm256_broadcastsi128_si256(s16.highHalf))
    }

    /// For group k (0..<4) of a half: its first scale (16-bit index 2k of a lane holding the
    /// half's eight scales) in the low lane and its second (index 2k + 1) in the high lane.
    @inlinable @inline(__always)
    static func scaleShuffle(_ halfScales: __m256i, _ k: Int) -> __m256i {
        let lo = Int16(truncatingIfNeeded: (4 * k) | ((4 * k + 1) << 8))
        let hi = Int16(truncatingIfNeeded: (4 * k + 2) | ((4 * k + 3) << 8))
        let mask = SIMD16<Int16>(lowHalf: SIMD8(repeating: lo), highHalf: SIMD8(repeating: hi))
        return _mm256_shuffle_epi8(halfScales, unsafeBitCast(mask, to: __m256i.self))
    }

    /// The `- 32` offset of a block as ggml applies it: `32 x madd(bsums, scales)`, 8 int32
    /// lanes (lane i: the two 16-value groups 2i and 2i + 1).
    @inlinable @inline(__always)
    static func offsetAVX2(_ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> __m256i {
        let scales16 = _mm256_cvtepi8_epi16((x + 192).loadUnaligned(as: __m128i.self))
        return _mm256_slli_epi32(_mm256_madd_epi16(loadBytes(y + 260), scales16), 5)
    }

    /// ggml's AVX2 arithmetic (`ggml_vec_dot_q6_K_q8_K`): per 32 values `maddubs(q, q8)` with
    /// the unsigned 6-bit q, times the two scales by `madd`, summed in 8 int32 lanes; the
    /// offset `32 x scale x q8` is subtracted per block as `32 x madd(bsums, scales)` (a
    /// different lane split than per value); then `acc = fma(d_a * d, float(sumi), acc)` and
    /// `hsum_float_8(acc)`.
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        for b in 0..<(count / 256) {
            let x = w + b * 210, y = a + b * 292
            let sc = scalesAVX2(x)
            var sumi = _mm256_setzero_si256()
            for n in 0..<2 {
                let half = n == 0 ? sc.first : sc.second
                let q = weightsAVX2(x, n)
                let o = 4 + 128 * n
                @inline(__always) func group(_ q: __m256i, _ k: Int) -> __m256i {
                    _mm256_madd_epi16(scaleShuffle(half, k), _mm256_maddubs_epi16(q, loadBytes(y + o + 32 * k)))
                }
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(group(q.0, 0), group(q.1, 1)))
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(group(q.2, 2), group(q.3, 3)))
            }
            sumi = _mm256_sub_epi32(sumi, offsetAVX2(x, y))
            let d = y.loadUnaligned(as: Float.self) * Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc)
        }
        return hsum(acc)
    }
    #endif

    /// One weight row against four Q8_K activation rows; bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        #if arch(x86_64)
        var acc = BlockAccumulator4()
        for b in 0..<(count / 256) {
            let x = w + b * 210
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let sc = scalesAVX2(x)
            var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
            for n in 0..<2 {
                let half = n == 0 ? sc.first : sc.second
                let q = weightsAVX2(x, n)
                for k in 0..<4 {
                    let qk: __m256i
                    switch k {
                    case 0: qk = q.0
                    case 1: qk = q.1
                    case 2: qk = q.2
                    default: qk = q.3
                    }
                    let s = scaleShuffle(half, k)
                    let o = 4 + 128 * n + 32 * k
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(s, _mm256_maddubs_epi16(qk, loadBytes(y0 + o))))
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(s, _mm256_maddubs_epi16(qk, loadBytes(y1 + o))))
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(s, _mm256_maddubs_epi16(qk, loadBytes(y2 + o))))
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(s, _mm256_maddubs_epi16(qk, loadBytes(y3 + o))))
                }
            }
            s0 = _mm256_sub_epi32(s0, offsetAVX2(x, y0)); s1 = _mm256_sub_epi32(s1, offsetAVX2(x, y1))
            s2 = _mm256_sub_epi32(s2, offsetAVX2(x, y2)); s3 = _mm256_sub_epi32(s3, offsetAVX2(x, y3))
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let d = yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
            acc.add(d, _mm256_cvtepi32_ps(s0), _mm256_cvtepi32_ps(s1), _mm256_cvtepi32_ps(s2), _mm256_cvtepi32_ps(s3))
        }
        return acc.result()
        #else
        return SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
                     dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
        #endif
    }
}
