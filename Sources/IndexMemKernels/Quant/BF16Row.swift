// IndexMem — kernels. Apache-2.0.
//
// BF16 rows (ggml `GGML_TYPE_BF16`): the upper 16 bits of an f32. Dot products use bf16
// activations (ggml's `vec_dot_type` for BF16). As `ggml_vec_dot_bf16` on AVX2: four 8-lane
// f32 accumulators over 32 values per step, the tail past the last 32 summed in double. The
// widening is cheaper than ggml's: each 32-bit lane of two bf16 values gives the odd one by
// masking and the even one by a 16-bit shift, so an accumulator sees even or odd elements
// (the same products, summed in another order).

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - BF16 rows

public enum BF16Row {
    public static let blockBytes = 2

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: load8(src, i), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { dst[i] = value(src, i); i += 1 }
    }

    @inlinable @inline(__always)
    static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let bits = SIMD8<UInt32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)) &<< 16
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    static func value(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        BFloat16Conversion.toFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    }

    /// 16 values at element `i` as (even elements, odd elements), each 8 x f32.
    @inlinable @inline(__always)
    static func load16(_ p: UnsafeRawPointer, _ i: Int) -> (SIMD8<Float>, SIMD8<Float>) {
        #if arch(x86_64)
        // Intrinsics: from plain SIMD code LLVM builds these lanes with blends and broadcasts.
        let v = loadBytes(p + i * 2)
        return (_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(-65536))))
        #else
        let v = p.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt32>.self)
        return (unsafeBitCast(v &<< 16, to: SIMD8<Float>.self), unsafeBitCast(v & 0xffff_0000, to: SIMD8<Float>.self))
        #endif
    }

    /// Dot product of a BF16 weight row with bf16 activations.
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = HalfRowAccumulator()
        var i = 0
        while i + 32 <= count {
            let (x0, x1) = load16(w, i), (x2, x3) = load16(w, i + 16)
            let (y0, y1) = load16(a, i), (y2, y3) = load16(a, i + 16)
            acc.add(x0, x1, x2, x3, y0, y1, y2, y3)
            i += 32
        }
        var sum = Double(acc.reduceBF16())
        while i < count { sum += Double(value(w, i) * value(a, i)); i += 1 }
        return Float(sum)
    }

    /// Scalar reference: f32 products summed in order.
    @inlinable
    public static func dotPortable(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var sum: Float = 0
        for i in 0..<count { sum += value(w, i) * value(a, i) }
        return sum
    }

    /// One weight row against four bf16 activation rows, two rows per pass; bit-identical to
    /// four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        @inline(__always) func dot2(_ a0: UnsafeRawPointer, _ a1: UnsafeRawPointer) -> SIMD2<Float> {
            var c0 = HalfRowAccumulator(), c1 = HalfRowAccumulator()
            var i = 0
            while i + 32 <= count {
                // Same products into the same accumulators as `dot`, fewer values live at once.
                let (x0, x1) = load16(w, i)
                let (p0, p1) = load16(a0, i), (q0, q1) = load16(a1, i)
                c0.c0.addProduct(x0, p0); c0.c1.addProduct(x1, p1)
                c1.c0.addProduct(x0, q0); c1.c1.addProduct(x1, q1)
                let (x2, x3) = load16(w, i + 16)
                let (p2, p3) = load16(a0, i + 16), (q2, q3) = load16(a1, i + 16)
                c0.c2.addProduct(x2, p2); c0.c3.addProduct(x3, p3)
                c1.c2.addProduct(x2, q2); c1.c3.addProduct(x3, q3)
                i += 32
            }
            var s0 = Double(c0.reduceBF16()), s1 = Double(c1.reduceBF16())
            while i < count {
                let x = value(w, i)
                s0 += Double(x * value(a0, i))
                s1 += Double(x * value(a1, i))
                i += 1
            }
            return SIMD2(Float(s0), Float(s1))
        }
        return SIMD4(lowHalf: dot2(a, a + aStride), highHalf: dot2(a + 2 * aStride, a + 3 * aStride))
    }
}
