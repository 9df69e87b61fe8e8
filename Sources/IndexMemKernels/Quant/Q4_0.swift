// IndexMem — kernels. Apache-2.0.
//
// Q4_0 (ggml `block_q4_0`, 18 bytes per 32 values): f16 scale d, then 16 bytes of nibbles:
// byte j holds value j (low nibble) and value j + 16 (high nibble). Value = d * (q - 8).
// Dot products use Q8_0 activations.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q4_0

public enum Q4_0 {
    public static let blockBytes = 18

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 32) {
            let block = src + b * 18
            let d = Half.toFloat(block.loadUnaligned(as: UInt16.self))
            let bytes = block.advanced(by: 2).loadUnaligned(as: SIMD16<UInt8>.self)
            // (q - 8) in float is exact, so this equals ggml's float(q - 8) * d.
            let lo = SIMD16<Float>(bytes & 0x0f) - 8, hi = SIMD16<Float>(bytes &>> 4) - 8
            let out = UnsafeMutableRawPointer(dst + b * 32)
            out.storeBytes(of: lo * d, as: SIMD16<Float>.self)
            out.storeBytes(of: hi * d, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// Dot product of a Q4_0 weight row with Q8_0 activations.
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
            let x = w + b * 18, y = a + b * 34
            let bytes = x.advanced(by: 2).loadUnaligned(as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int16>(truncatingIfNeeded: bytes & 0x0f) &- 8, hi = SIMD16<Int16>(truncatingIfNeeded: bytes &>> 4) &- 8
            let q = SIMD32<Int16>(truncatingIfNeeded: y.advanced(by: 2).loadUnaligned(as: SIMD32<Int8>.self))
            let p = SIMD16<Int32>(truncatingIfNeeded: lo &* q.lowHalf).wrappedSum() &+ SIMD16<Int32>(truncatingIfNeeded: hi &* q.highHalf).wrappedSum()
            sum += Half.toFloat(x.loadUnaligned(as: UInt16.self)) * Half.toFloat(y.loadUnaligned(as: UInt16.self)) * Float(p)
        }
        return sum
    }

    #if arch(x86_64)
    /// Signed weights q - 8 of one block.
    @inlinable @inline(__always)
    static func weights(_ x: UnsafeRawPointer) -> __m256i {
        _mm256_sub_epi8(bytesFromNibbles(x + 2), _mm256_set1_epi8(8))
    }

    @inlinable
    public static func dotAVX2(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = _mm256_setzero_ps()
        let nb = count / 32
        var b = 0
        while b + 2 <= nb {
            let x0 = w + b * 18, y0 = a + b * 34, x1 = x0 + 18, y1 = y0 + 34
            let d = scaleProducts(x0, x1, y0, y1)
            let q0 = weights(x0), q1 = weights(x1)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[0]), mulSumU8S8(_mm256_sign_epi8(q0, q0), _mm256_sign_epi8(loadBytes(y0 + 2), q0)), acc)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d[1]), mulSumU8S8(_mm256_sign_epi8(q1, q1), _mm256_sign_epi8(loadBytes(y1 + 2), q1)), acc)
            b += 2
        }
        if b < nb {
            let x = w + b * 18, y = a + b * 34
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
            let x = w + b * 18
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

// MARK: - Shared helpers of the 32-value formats
//
// Float arithmetic as ggml's AVX2 `ggml_vec_dot_q*_q8_*` (and llamafile's tinyBLAS, which
// llama.cpp uses for Q8_0/Q4_0/Q5_0): per block `acc = fma(d_w * d_a, float(int32 lanes), acc)`
// in block order into one 8-lane accumulator, then `hsum_float_8`. `dot` converts the f16
// scales of two blocks at a time, which changes no result.

/// f16 values at four addresses, as floats. On x86 the four are packed with integer
/// instructions and converted by one `vcvtph2ps` (LLVM would otherwise convert each alone).
@inlinable @inline(__always)
func loadHalf4(_ p0: UnsafeRawPointer, _ p1: UnsafeRawPointer, _ p2: UnsafeRawPointer, _ p3: UnsafeRawPointer) -> SIMD4<Float> {
    #if arch(x86_64)
    let packed = UInt64(p0.loadUnaligned(as: UInt16.self)) | UInt64(p1.loadUnaligned(as: UInt16.self)) << 16
        | UInt64(p2.loadUnaligned(as: UInt16.self)) << 32 | UInt64(p3.loadUnaligned(as: UInt16.self)) << 48
    return _mm_cvtph_ps(_mm_cvtsi64_si128(Int64(bitPattern: packed)))
    #else
    return SIMD4(Half.toFloat(p0.loadUnaligned(as: UInt16.self)), Half.toFloat(p1.loadUnaligned(as: UInt16.self)),
                 Half.toFloat(p2.loadUnaligned(as: UInt16.self)), Half.toFloat(p3.loadUnaligned(as: UInt16.self)))
    #endif
}

/// The products of the f16 scales of two weight blocks and two activation blocks:
/// (x0 * y0, x1 * y1), converted together.
@inlinable @inline(__always)
func scaleProducts(_ x0: UnsafeRawPointer, _ x1: UnsafeRawPointer, _ y0: UnsafeRawPointer, _ y1: UnsafeRawPointer) -> SIMD2<Float> {
    let f = loadHalf4(x0, x1, y0, y1)
    return f.lowHalf * f.highHalf
}

#if arch(x86_64)
/// `acc = fma(d, p, acc)` for four activation rows.
@usableFromInline
struct BlockAccumulator4 {
    @usableFromInline var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()

    @inlinable init() {}

    @inlinable @inline(__always)
    mutating func add(_ d: SIMD4<Float>, _ p0: __m256, _ p1: __m256, _ p2: __m256, _ p3: __m256) {
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(d[0]), p0, a0); a1 = _mm256_fmadd_ps(_mm256_set1_ps(d[1]), p1, a1)
        a2 = _mm256_fmadd_ps(_mm256_set1_ps(d[2]), p2, a2); a3 = _mm256_fmadd_ps(_mm256_set1_ps(d[3]), p3, a3)
    }

    @inlinable @inline(__always)
    func result() -> SIMD4<Float> { SIMD4(hsum(a0), hsum(a1), hsum(a2), hsum(a3)) }
}
#endif
