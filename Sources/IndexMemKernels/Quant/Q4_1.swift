// IndexMem — kernels. Apache-2.0.
//
// Q4_1 (ggml `block_q4_1`, 20 bytes per 32 values): f16 scale d, f16 minimum m, then 16
// bytes of nibbles: byte j holds value j (low nibble) and value j + 16 (high nibble).
// Value = d * q + m. Dot products use Q8_1 activations: the `s = d_a * sum(q_a)` of each
// activation block turns the minimum's contribution into one multiply.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q4_1

public enum Q4_1 {
    public static let blockBytes = 20

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 32) {
            let block = src + b * 20
            let d = Half.toFloat(block.loadUnaligned(as: UInt16.self))
            let m = Half.toFloat(block.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let bytes = block.advanced(by: 4).loadUnaligned(as: SIMD16<UInt8>.self)
            let lo = SIMD16<Float>(bytes & 0x0f), hi = SIMD16<Float>(bytes &>> 4)
            let out = UnsafeMutableRawPointer(dst + b * 32)
            out.storeBytes(of: lo * d + m, as: SIMD16<Float>.self)
            out.storeBytes(of: hi * d + m, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// Dot product of a Q4_1 weight row with Q8_1 activations.
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
            let x = w + b * 20, y = a + b * 36
            let bytes = x.advanced(by: 4).loadUnaligned(as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int16>(truncatingIfNeeded: bytes & 0x0f), hi = SIMD16<Int16>(truncatingIfNeeded: bytes &>> 4)
            let q = SIMD32<Int16>(truncatingIfNeeded: y.advanced(by: 4).loadUnaligned(as: SIMD32<Int8>.self))
            let qlo = q.lowHalf, qhi = q.highHalf
            let p = SIMD16<Int32>(truncatingIfNeeded: lo &* qlo).wrappedSum() &+ SIMD16<Int32>(truncatingIfNeeded: hi &* qhi).wrappedSum()
            let dx = Half.toFloat(x.loadUnaligned(as: UInt16.self)), mx = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let dy = Half.toFloat(y.loadUnaligned(as: UInt16.self)), sy = Half.toFloat(y.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            sum += dx * dy * Float(p) + mx * sy
        }
        return sum
    }

    #if arch(x86_64)
    /// Blocks in pairs: their eight f16 values (d, m; d_a, s_a) are converted in two
    /// instructions. Arithmetic as ggml: `acc = fma(d * d_a, q, acc)`, `summs += m * s_a`,
    /// `hsum_float_8(acc) + summs`.
    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        var mins: Float = 0
        let nb = count / 32
        var b = 0
        while b + 2 <= nb {
            let x0 = w + b * 20, y0 = a + b * 36, x1 = x0 + 20, y1 = y0 + 36
            // (dx0 * dy0, dx1 * dy1, mx0 * sy0, mx1 * sy1)
            let p = loadHalf4(x0, x1, x0 + 2, x1 + 2) * loadHalf4(y0, y1, y0 + 2, y1 + 2)
            mins += p[2]
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[0]), mulSumU8S8(bytesFromNibbles(x0 + 4), loadBytes(y0 + 4)), acc)
            mins += p[3]
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[1]), mulSumU8S8(bytesFromNibbles(x1 + 4), loadBytes(y1 + 4)), acc)
            b += 2
        }
        if b < nb {
            let x = w + b * 20, y = a + b * 36
            let dx = Half.toFloat(x.loadUnaligned(as: UInt16.self)), mx = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let dy = Half.toFloat(y.loadUnaligned(as: UInt16.self)), sy = Half.toFloat(y.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            mins += mx * sy
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), mulSumU8S8(bytesFromNibbles(x + 4), loadBytes(y + 4)), acc)
        }
        return hsum(acc) + mins
    }
    #endif

    /// One weight row against four Q8_1 activation rows; bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        #if arch(x86_64)
        var acc = BlockAccumulator4()
        var mins = SIMD4<Float>()
        for b in 0..<(count / 32) {
            let x = w + b * 20
            let y0 = a + b * 36, y1 = y0 + aStride, y2 = y1 + aStride, y3 = y2 + aStride
            let dx = Half.toFloat(x.loadUnaligned(as: UInt16.self)), mx = Half.toFloat(x.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let dy = loadHalf4(y0, y1, y2, y3), sy = loadHalf4(y0 + 2, y1 + 2, y2 + 2, y3 + 2)
            mins += mx * sy
            let qx = bytesFromNibbles(x + 4)
            acc.add(dx * dy,
                    mulSumU8S8(qx, loadBytes(y0 + 4)), mulSumU8S8(qx, loadBytes(y1 + 4)),
                    mulSumU8S8(qx, loadBytes(y2 + 4)), mulSumU8S8(qx, loadBytes(y3 + 4)))
        }
        return acc.result() + mins
        #else
        return SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
                     dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
        #endif
    }
}
