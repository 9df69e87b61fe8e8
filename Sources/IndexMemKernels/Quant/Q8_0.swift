// IndexMem — kernels. Apache-2.0.
//
// Q8_0 (ggml `block_q8_0`, 34 bytes per 32 values): f16 scale d, then 32 x int8 q.
// Value = d * q. Dot products use Q8_0 activations.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q8_0

public enum Q8_0 {
    public static let blockBytes = 34

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 32) {
            let block = src + b * 34
            let d = Half.toFloat(block.loadUnaligned(as: UInt16.self))
            let q = SIMD32<Float>(block.advanced(by: 2).loadUnaligned(as: SIMD32<Int8>.self))
            UnsafeMutableRawPointer(dst + b * 32).storeBytes(of: q * d, as: SIMD32<Float>.self)
        }
    }

    /// Dot product of a Q8_0 weight row with Q8_0 activations.
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
            let x = w + b * 34, y = a + b * 34
            let qx = SIMD32<Int16>(truncatingIfNeeded: x.advanced(by: 2).loadUnaligned(as: SIMD32<Int8>.self))
            let qy = SIMD32<Int16>(truncatingIfNeeded: y.advanced(by: 2).loadUnaligned(as: SIMD32<Int8>.self))
            let p = SIMD32<Int32>(truncatingIfNeeded: qx &* qy).wrappedSum()
            sum += Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self)) * Float(p)
        }
        return sum
    }

    #if arch(x86_64)
    /// As ggml: `acc = fma(d_w * d_a, q, acc)` in block order, then `hsum_float_8`; the f16
    /// scales of two blocks are converted together.
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        let nb = count / 32
        var b = 0
        while b + 2 <= nb {
            let x0 = w + b * 34, y0 = a + b * 34, x1 = x0 + 34, y1 = y0 + 34
            let d = scaleProducts(x0, x1, y0, y1)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[0]), mulSumS8S8(loadBytes(x0 + 2), loadBytes(y0 + 2)), acc)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[1]), mulSumS8S8(loadBytes(x1 + 2), loadBytes(y1 + 2)), acc)
            b += 2
        }
        if b < nb {
            let x = w + b * 34, y = a + b * 34
            let d = Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self))
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mulSumS8S8(loadBytes(x + 2), loadBytes(y + 2)), acc)
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
            let x = w + b * 34
            let y0 = a + b * 34, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let qx = loadBytes(x + 2), ax = _mm256_sign_epi8(qx, qx)
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
