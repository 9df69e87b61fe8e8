// IndexMem — kernels for CPUs with AVX-VNNI. Apache-2.0.
//
// This module alone is compiled for a target with AVX-VNNI (`vpdpbusd`: 32 byte products
// summed in fours into 8 x int32, one instruction where AVX2 needs `vpmaddubsw` and
// `vpmaddwd`); IndexMemKernels calls it only after checking the CPU has the instructions.
// The integer sums are the same as AVX2's (no intermediate saturates for these formats), so
// results are bit-identical to the AVX2 kernels and to ggml's `ggml_vec_dot_*`.

#if arch(x86_64)
import _Builtin_intrinsics.intel

public enum GroupedDotVNNI {
    /// `dot(w, a + t * aStride)` for t in 0..<8, from one weight row decoded beforehand.
    /// - Parameters:
    ///   - quants: `blocks * 32` bytes, the row's quants: unsigned when `hasMinimum`, signed otherwise.
    ///   - weightScales: `blocks * 2` floats: each block's d and m (m unused without a minimum).
    ///   - activations: the first activation row (Q8_1 blocks of 36 bytes with a minimum, else
    ///     Q8_0 blocks of 34 bytes); row t at `activations + t * aStride`.
    ///   - activationScales: `blocks * 16` floats: per block the eight rows' d, then their s.
    public static func dot8(
        quants: UnsafeRawPointer, weightScales: UnsafePointer<Float>, activations: UnsafeRawPointer, aStride: Int,
        blocks: Int, activationScales: UnsafePointer<Float>, hasMinimum: Bool
    ) -> SIMD8<Float> {
        hasMinimum
            ? products(quants, weightScales, activations, aStride, blocks, activationScales, minimum: true)
            : products(quants, weightScales, activations, aStride, blocks, activationScales, minimum: false)
    }

    @inline(__always)
    static func products(
        _ quants: UnsafeRawPointer, _ weightScales: UnsafePointer<Float>, _ activations: UnsafeRawPointer, _ aStride: Int,
        _ blocks: Int, _ activationScales: UnsafePointer<Float>, minimum: Bool
    ) -> SIMD8<Float> {
        var a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
        var mins = _mm256_setzero_ps()
        let zero = _mm256_setzero_si256()
        let activationBlockBytes = minimum ? 36 : 34, quantOffset = minimum ? 4 : 2
        @inline(__always) func load(_ p: UnsafeRawPointer) -> __m256i { _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self)) }
        // Unsigned weights: one vpdpbusd. Signed (as ggml): |w| times the activations with w's signs.
        @inline(__always) func sums(_ q: __m256i, _ aq: __m256i, _ y: UnsafeRawPointer) -> __m256 {
            minimum
                ? _mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(zero, q, load(y)))
                : _mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(zero, aq, _mm256_sign_epi8(load(y), q)))
        }
        for b in 0..<blocks {
            let s = activationScales + b * 16
            // fma(d, d_a, +0) rounds as d * d_a (the accumulators never hold -0).
            let dd = _mm256_fmadd_ps(_mm256_broadcast_ss(weightScales + 2 * b), _mm256_loadu_ps(s), _mm256_setzero_ps())
            if minimum { mins = _mm256_add_ps(mins, _mm256_mul_ps(_mm256_broadcast_ss(weightScales + 2 * b + 1), _mm256_loadu_ps(s + 8))) }
            let q = load(quants + 32 * b)
            let aq = minimum ? q : _mm256_sign_epi8(q, q)
            let y = activations + b * activationBlockBytes + quantOffset
            a0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(0)), sums(q, aq, y), a0)
            a1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(1)), sums(q, aq, y + aStride), a1)
            a2 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(2)), sums(q, aq, y + 2 * aStride), a2)
            a3 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(3)), sums(q, aq, y + 3 * aStride), a3)
            a4 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(4)), sums(q, aq, y + 4 * aStride), a4)
            a5 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(5)), sums(q, aq, y + 5 * aStride), a5)
            a6 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(6)), sums(q, aq, y + 6 * aStride), a6)
            a7 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(7)), sums(q, aq, y + 7 * aStride), a7)
        }
        let sums = SIMD8<Float>(horizontalSum(a0), horizontalSum(a1), horizontalSum(a2), horizontalSum(a3),
                                horizontalSum(a4), horizontalSum(a5), horizontalSum(a6), horizontalSum(a7))
        return minimum ? sums + unsafeBitCast(mins, to: SIMD8<Float>.self) : sums
    }

    /// ggml's `hsum_float_8` order (the one IndexMemKernels' `VectorMath.horizontalSum` uses).
    @inline(__always)
    static func horizontalSum(_ v: __m256) -> Float {
        let x = unsafeBitCast(v, to: SIMD8<Float>.self)
        let r = x.highHalf + x.lowHalf
        return (r[0] + r[2]) + (r[1] + r[3])
    }
}
#endif
