// IndexMem — kernels. Apache-2.0.
//
// F16 rows (ggml `GGML_TYPE_F16`): IEEE binary16 values. Dot products use f16 activations
// (ggml's `vec_dot_type` for F16). As `ggml_vec_dot_f16` on AVX2: both sides widened to f32
// (F16C), four 8-lane FMA accumulators over 32 values per step, reduced as
// ((a0 + a2) + (a1 + a3)) then across lanes; the tail past the last 32 is summed in double.

// MARK: - F16 rows

public enum F16Row {
    public static let blockBytes = 2

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        Half.convert(src.assumingMemoryBound(to: UInt16.self), to: dst, count: count)
    }

    @inlinable @inline(__always)
    static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        SIMD8<Float>(p.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<Float16>.self))
    }

    @inlinable @inline(__always)
    static func value(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Half.toFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    }

    /// Dot product of an F16 weight row with f16 activations.
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        var acc = HalfRowAccumulator()
        var i = 0
        while i + 32 <= count {
            acc.add(load8(w, i), load8(w, i + 8), load8(w, i + 16), load8(w, i + 24),
                    load8(a, i), load8(a, i + 8), load8(a, i + 16), load8(a, i + 24))
            i += 32
        }
        var sum = Double(acc.reduceF16())
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

    /// One weight row against four f16 activation rows, two rows per pass (eight
    /// accumulators fit the registers); bit-identical to four `dot` calls.
    @inlinable
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        @inline(__always) func dot2(_ a0: UnsafeRawPointer, _ a1: UnsafeRawPointer) -> SIMD2<Float> {
            var c0 = HalfRowAccumulator(), c1 = HalfRowAccumulator()
            var i = 0
            while i + 32 <= count {
                let x0 = load8(w, i), x1 = load8(w, i + 8), x2 = load8(w, i + 16), x3 = load8(w, i + 24)
                c0.add(x0, x1, x2, x3, load8(a0, i), load8(a0, i + 8), load8(a0, i + 16), load8(a0, i + 24))
                c1.add(x0, x1, x2, x3, load8(a1, i), load8(a1, i + 8), load8(a1, i + 16), load8(a1, i + 24))
                i += 32
            }
            var s0 = Double(c0.reduceF16()), s1 = Double(c1.reduceF16())
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

/// Four 8-lane f32 accumulators of the 16-bit float rows (ggml's `sum[GGML_F16_ARR]`).
@usableFromInline
struct HalfRowAccumulator {
    @usableFromInline var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()

    @inlinable init() {}

    @inlinable @inline(__always)
    mutating func add(_ x0: SIMD8<Float>, _ x1: SIMD8<Float>, _ x2: SIMD8<Float>, _ x3: SIMD8<Float>,
                      _ y0: SIMD8<Float>, _ y1: SIMD8<Float>, _ y2: SIMD8<Float>, _ y3: SIMD8<Float>) {
        c0.addProduct(x0, y0); c1.addProduct(x1, y1); c2.addProduct(x2, y2); c3.addProduct(x3, y3)
    }

    /// `GGML_F16_VEC_REDUCE`: (c0 + c2) + (c1 + c3), halves added, then ((h0 + h1) + (h2 + h3)).
    @inlinable @inline(__always)
    func reduceF16() -> Float {
        let s = (c0 + c2) + (c1 + c3)
        let h = s.lowHalf + s.highHalf
        return (h[0] + h[1]) + (h[2] + h[3])
    }

    /// `ggml_vec_dot_bf16` (AVX2): (c0 + c2) + (c1 + c3), halves added, then ((h0 + h2) + (h1 + h3)).
    @inlinable @inline(__always)
    func reduceBF16() -> Float {
        let s = (c0 + c2) + (c1 + c3)
        let h = s.lowHalf + s.highHalf
        return (h[0] + h[2]) + (h[1] + h[3])
    }
}
