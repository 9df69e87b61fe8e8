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
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        for b in 0..<(count / 32) {
            let x = w + b * 34, y = a + b * 34
            let d = _mm256_set1_ps(Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self)))
            let q = mulSumS8S8(loadBytes(x + 2), loadBytes(y + 2))
            acc = _mm256_fmadd_ps(d, q, acc)
        }
        return hsum(acc)
    }
    #endif
}
