// IndexMem — kernels. Apache-2.0.
//
// Q5_0 (ggml `block_q5_0`, 22 bytes per 32 values): f16 scale d, 4 bytes qh (bit j is the
// fifth bit of value j), then 16 bytes of nibbles: byte j holds the low four bits of value j
// (low nibble) and of value j + 16 (high nibble). Value = d * ((q | h << 4) - 16).
// Dot products use Q8_0 activations.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q5_0

public enum Q5_0 {
    public static let blockBytes = 22

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 32) {
            let block = src + b * 22
            let d = Half.toFloat(block.loadUnaligned(as: UInt16.self))
            let (lo, hi) = values(block + 2)
            let out = UnsafeMutableRawPointer(dst + b * 32)
            out.storeBytes(of: SIMD16<Float>(lo &- 16) * d, as: SIMD16<Float>.self)
            out.storeBytes(of: SIMD16<Float>(hi &- 16) * d, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// The unsigned 5-bit values (0...31) of a block from its `qh` (at `p`) and nibbles (`p + 4`).
    @inlinable @inline(__always)
    static func values(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        let qh = p.loadUnaligned(as: UInt32.self)
        let bytes = (p + 4).loadUnaligned(as: SIMD16<UInt8>.self)
        let shifts = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let hLo = ((SIMD16<UInt32>(repeating: qh) &>> shifts) & 1) &<< 4
        let hHi = ((SIMD16<UInt32>(repeating: qh >> 16) &>> shifts) & 1) &<< 4
        let lo = SIMD16<UInt32>(truncatingIfNeeded: bytes & 0x0f) | hLo
        let hi = SIMD16<UInt32>(truncatingIfNeeded: bytes &>> 4) | hHi
        return (SIMD16<Int32>(truncatingIfNeeded: lo), SIMD16<Int32>(truncatingIfNeeded: hi))
    }

    /// Dot product of a Q5_0 weight row with Q8_0 activations.
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
        for b in 0..<(count / 32) {
            let x = w + b * 22, y = a + b * 34
            let (lo, hi) = values(x + 2)
            let q = SIMD32<Int32>(truncatingIfNeeded: y.advanced(by: 2).loadUnaligned(as: SIMD32<Int8>.self))
            let p = ((lo &- 16) &* q.lowHalf).wrappedSum() &+ ((hi &- 16) &* q.highHalf).wrappedSum()
            sum += Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self)) * Float(p)
        }
        return sum
    }

    #if arch(x86_64)
    /// Signed weights (q | h << 4) - 16 of one block: nibbles or 0xf0 where the fifth bit is clear.
    @inlinable @inline(__always)
    static func weights(_ x: UnsafeRawPointer) -> __m256i {
        let clear = _mm256_andnot_si256(bytesFromBits32(x + 2), _mm256_set1_epi8(-16))
        return _mm256_or_si256(bytesFromNibbles(x + 6), clear)
    }

    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        let nb = count / 32
        var b = 0
        while b + 2 <= nb {
            let x0 = w + b * 22, y0 = a + b * 34, x1 = x0 + 22, y1 = y0 + 34
            let d = scaleProducts(x0, x1, y0, y1)
            let q0 = weights(x0), q1 = weights(x1)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[0]), mulSumU8S8(_mm256_sign_epi8(q0, q0), _mm256_sign_epi8(loadBytes(y0 + 2), q0)), acc)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[1]), mulSumU8S8(_mm256_sign_epi8(q1, q1), _mm256_sign_epi8(loadBytes(y1 + 2), q1)), acc)
            b += 2
        }
        if b < nb {
            let x = w + b * 22, y = a + b * 34
            let qx = weights(x)
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self))
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mulSumU8S8(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(loadBytes(y + 2), qx)), acc)
        }
        return hsum(acc)
    }
    #endif

    /// One weight row against four Q8_0 activation rows; bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        #if arch(x86_64)
        var acc = BlockAccumulator4()
        for b in 0..<(count / 32) {
            let x = w + b * 22
            let y0 = a + b * 34, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let qx = weights(x), ax = _mm256_sign_epi8(qx, qx)
            let dd = Half.toFloat(x.loadUnaligned(as: UInt16.self)) * loadHalf4(y0, y1, y2, y3)
            acc.add(dd,
                    mulSumU8S8(ax, _mm256_sign_epi8(loadBytes(y0 + 2), qx)), mulSumU8S8(ax, _mm256_sign_epi8(loadBytes(y1 + 2), qx)),
                    mulSumU8S8(ax, _mm256_sign_epi8(loadBytes(y2 + 2), qx)), mulSumU8S8(ax, _mm256_sign_epi8(loadBytes(y3 + 2), qx)))
        }
        return acc.result()
        #else
        return SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
                     dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
        #endif
    }
}

#if arch(x86_64)
/// 32 bits to 32 bytes: byte i is 0xff if bit i is set, else 0 (ggml's `bytes_from_bits_32`).
@inlinable @inline(__always)
func bytesFromBits32(_ p: UnsafeRawPointer) -> __m256i {
    let bits = _mm256_set1_epi32(Int32(bitPattern: p.loadUnaligned(as: UInt32.self)))
    let spread = _mm256_shuffle_epi8(bits, _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0))
    let probed = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe))
    return _mm256_cmpeq_epi8(probed, _mm256_set1_epi64x(-1))
}
#endif
