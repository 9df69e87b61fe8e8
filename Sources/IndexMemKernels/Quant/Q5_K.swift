// IndexMem — kernels. Apache-2.0.
//
// Q5_K (ggml `block_q5_K`, 176 bytes per 256 values): f16 d, f16 dmin, 12 bytes of 6-bit
// scales and minimums (as Q4_K), 32 bytes qh, then 128 bytes of nibbles laid out as Q4_K.
// The fifth bit of value 64j + l (l < 32) is bit 2j of qh[l]; of value 64j + 32 + l it is
// bit 2j + 1. Value = d * scale * q - dmin * min. Dot products use Q8_K activations.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q5_K

public enum Q5_K {
    public static let blockBytes = 176

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 256) {
            let x = src + b * 176
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self))
            let dmin = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let sm = unsafeBitCast(kScalesAndMins(x + 4), to: SIMD16<UInt8>.self)
            let qh = (x + 16).loadUnaligned(as: SIMD32<UInt8>.self)
            let out = UnsafeMutableRawPointer(dst + b * 256)
            for j in 0..<4 {
                let (lo, hi) = values(x, qh, j)
                let d1 = d * Float(sm[2 * j]), m1 = dmin * Float(sm[8 + 2 * j])
                let d2 = d * Float(sm[2 * j + 1]), m2 = dmin * Float(sm[9 + 2 * j])
                out.storeBytes(of: SIMD32<Float>(lo) * d1 - m1, toByteOffset: 256 * j, as: SIMD32<Float>.self)
                out.storeBytes(of: SIMD32<Float>(hi) * d2 - m2, toByteOffset: 256 * j + 128, as: SIMD32<Float>.self)
            }
        }
    }

    /// The 5-bit values (0...31) of chunk `j` of the block at `x`: values 64j..<64j+32 and 64j+32..<64j+64.
    @inlinable @inline(__always)
    static func values(_ x: UnsafeRawPointer, _ qh: SIMD32<UInt8>, _ j: Int) -> (SIMD32<UInt8>, SIMD32<UInt8>) {
        let bytes = (x + 48 + 32 * j).loadUnaligned(as: SIMD32<UInt8>.self)
        let h = qh &>> UInt8(2 * j)
        return ((bytes & 0x0f) | ((h & 1) &<< 4), (bytes &>> 4) | ((h & 2) &<< 3))
    }

    /// Dot product of a Q5_K weight row with Q8_K activations.
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
        var sum: Float = 0, summ: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 176, y = a + b * 292
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
            let msum = kMinSum(sm, y)
            let yd = y.loadUnaligned(as: Float.self)
            sum += yd * Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Float(isum)
            summ += yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * Float(msum)
        }
        return sum - summ
    }

    #if arch(x86_64)
    /// Chunk `j`'s two 32-value halves; `h` holds qh shifted right by 2j within 16-bit lanes
    /// (bits 0 and 1 of every byte are still that byte's bits 2j and 2j + 1).
    @inlinable @inline(__always)
    static func weightsAVX2(_ x: UnsafeRawPointer, _ h: __m256i, _ j: Int) -> (__m256i, __m256i) {
        let m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10)
        let bits = loadBytes(x + 48 + 32 * j)
        let lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), b4))
        let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), _mm256_and_si256(_mm256_slli_epi16(h, 3), b4))
        return (lo, hi)
    }

    /// ggml's AVX2 arithmetic: per block `acc = fma(d_a * d, float(sumi), acc)` over 8 int32
    /// lanes and `summs += -d_a * dmin * (integer sum of mins x group sums)`, then
    /// `hsum_float_8(acc) + summs`.
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        var summs: Float = 0
        for b in 0..<(count / 256) {
            let x = w + b * 176, y = a + b * 292
            let (scales, mins) = kScalesAndMinsAVX2(x + 4)
            var h = loadBytes(x + 16)
            var sumi = _mm256_setzero_si256()
            for j in 0..<4 {
                let (lo, hi) = weightsAVX2(x, h, j)
                h = _mm256_srli_epi16(h, 2)
                let pl = _mm256_madd_epi16(kScaleShuffle(scales, 2 * j), _mm256_maddubs_epi16(lo, loadBytes(y + 4 + 64 * j)))
                let ph = _mm256_madd_epi16(kScaleShuffle(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, loadBytes(y + 36 + 64 * j)))
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph))
            }
            let yd = y.loadUnaligned(as: Float.self)
            let dmin = -yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            summs += dmin * Float(unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum())
            acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * Half.toFloat(x.loadUnaligned(as: UInt16.self))), _mm256_cvtepi32_ps(sumi), acc)
        }
        return hsum(acc) + summs
    }
    #endif

    /// One weight row against four Q8_K activation rows; bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        #if arch(x86_64)
        var acc = BlockAccumulator4()
        var summs = SIMD4<Float>()
        for b in 0..<(count / 256) {
            let x = w + b * 176
            let y0 = a + b * 292, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
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
            let yd = SIMD4<Float>(y0.loadUnaligned(as: Float.self), y1.loadUnaligned(as: Float.self),
                                  y2.loadUnaligned(as: Float.self), y3.loadUnaligned(as: Float.self))
            let dmin = -yd * Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            @inline(__always) func msum(_ y: UnsafeRawPointer) -> Float {
                Float(unsafeBitCast(kMinProducts(mins, y), to: SIMD4<Int32>.self).wrappedSum())
            }
            summs += dmin * SIMD4(msum(y0), msum(y1), msum(y2), msum(y3))
            let d = yd * Half.toFloat(x.loadUnaligned(as: UInt16.self))
            acc.add(d, _mm256_cvtepi32_ps(s0), _mm256_cvtepi32_ps(s1), _mm256_cvtepi32_ps(s2), _mm256_cvtepi32_ps(s3))
        }
        return acc.result() + summs
        #else
        return SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
                     dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
        #endif
    }
}
