// IndexMem — kernels. Apache-2.0.
//
// Products of one weight row of a 32-value block format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with
// eight activation rows at once: the rows of a batched decode step, or eight prompt tokens.
// `dot4` spends about as many instructions gathering and converting the four rows' f16 scales
// as it spends on the integer products; here the activation scales are converted to floats
// once per product (`GroupedActivationScales`), the weight block is decoded once for eight
// rows, and every row keeps its own accumulator in a register. The float arithmetic of each
// row is the format's `dot` (ggml's `ggml_vec_dot_*`), so results are bit-identical to it.

#if arch(x86_64)
import _Builtin_intrinsics.intel

// MARK: - Formats

/// A 32-value block format whose products llama.cpp computes with the `ggml_vec_dot_*`
/// arithmetic for any number of activation rows.
public protocol GroupedBlockFormat: RowFormat {
    /// Bytes of one weight block.
    static var weightBlockBytes: Int { get }
    /// Whether the block carries a minimum (`value = d * q + m`) and the activations are
    /// Q8_1 (with `s = d_a * sum(q_a)`); otherwise the activations are Q8_0.
    static var hasMinimum: Bool { get }
    /// The block's 32 quants as bytes: unsigned when `hasMinimum`, signed otherwise.
    static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i
}

extension Q4_0: GroupedBlockFormat {
    public static var weightBlockBytes: Int { 18 }
    public static var hasMinimum: Bool { false }
    @inlinable @inline(__always)
    public static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i { weights(block) }
}

extension Q4_1: GroupedBlockFormat {
    public static var weightBlockBytes: Int { 20 }
    public static var hasMinimum: Bool { true }
    @inlinable @inline(__always)
    public static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i { bytesFromNibbles(block + 4) }
}

extension Q5_0: GroupedBlockFormat {
    public static var weightBlockBytes: Int { 22 }
    public static var hasMinimum: Bool { false }
    @inlinable @inline(__always)
    public static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i { weights(block) }
}

extension Q5_1: GroupedBlockFormat {
    public static var weightBlockBytes: Int { 24 }
    public static var hasMinimum: Bool { true }
    @inlinable @inline(__always)
    public static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i { weights(block) }
}

extension Q8_0: GroupedBlockFormat {
    public static var weightBlockBytes: Int { 34 }
    public static var hasMinimum: Bool { false }
    @inlinable @inline(__always)
    public static func groupedQuants(_ block: UnsafeRawPointer) -> __m256i { loadBytes(block + 2) }
}

// MARK: - Activation scales

/// The f16 scales of activation rows, converted to floats and laid out per group of eight
/// rows and per block: `d` of the eight rows, then (Q8_1) their `s`.
public struct GroupedActivationScales {
    public static let rowsPerGroup = 8

    /// Floats needed for `groups` groups of `blocks` blocks.
    public static func floats(groups: Int, blocks: Int) -> Int { groups * blocks * 16 }

    /// Fills `out` for the first `groups * 8` rows of `activations` (stride `aStride` bytes).
    @inlinable
    public static func gather(
        _ activations: UnsafeRawPointer, aStride: Int, groups: Int, blocks: Int, hasMinimum: Bool,
        into out: UnsafeMutablePointer<Float>
    ) {
        let blockBytes = hasMinimum ? 36 : 34
        for g in 0..<groups {
            for t in 0..<rowsPerGroup {
                let row = activations + (g * rowsPerGroup + t) * aStride
                let o = out + g * blocks * 16 + t
                for b in 0..<blocks {
                    let y = row + b * blockBytes
                    o[b * 16] = Half.toFloat(y.loadUnaligned(as: UInt16.self))
                    if hasMinimum { o[b * 16 + 8] = Half.toFloat(y.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
                }
            }
        }
    }
}

// MARK: - Kernel

public enum GroupedBlocks {
    /// `dot(w, a + t * aStride)` for t in 0..<8, bit for bit.
    /// - Parameter scales: this group's block scales (`GroupedActivationScales`).
    @inlinable @inline(__always)
    public static func dot8<F: GroupedBlockFormat>(
        _: F.Type, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, blocks: Int,
        scales: UnsafePointer<Float>
    ) -> SIMD8<Float> {
        var a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
        var mins = SIMD8<Float>()
        let quantOffset = F.hasMinimum ? 4 : 2, activationBlockBytes = F.hasMinimum ? 36 : 34
        for b in 0..<blocks {
            let x = w + b * F.weightBlockBytes
            let y = a + b * activationBlockBytes + quantOffset
            let s = scales + b * 16
            // d and m (or d and two quant bytes) converted by one vcvtph2ps from a zero-extending
            // load: `Half.toFloat` inserts into a register still being written, which chained
            // each block's scales to the previous block's last accumulation.
            let scalesOfBlock = _mm_cvtph_ps(_mm_cvtsi32_si128(Int32(bitPattern: x.loadUnaligned(as: UInt32.self))))
            // fma(dx, d_a, +0) rounds as dx * d_a (the accumulators never hold -0); written so,
            // the compiler keeps one vector product instead of eight scalar ones.
            let dd = unsafeBitCast(
                _mm256_fmadd_ps(_mm256_broadcastss_ps(scalesOfBlock), _mm256_loadu_ps(s), _mm256_setzero_ps()), to: SIMD8<Float>.self)
            let q = F.groupedQuants(x)
            // Unsigned weights times the activations; signed ones as ggml: |w| times the
            // activations with w's signs.
            let aq = F.hasMinimum ? q : _mm256_sign_epi8(q, q)
            @inline(__always) func products(_ y: UnsafeRawPointer) -> __m256 {
                F.hasMinimum ? mulSumU8S8(q, loadBytes(y)) : mulSumU8S8(aq, _mm256_sign_epi8(loadBytes(y), q))
            }
            if F.hasMinimum {
                let mx = _mm256_broadcastss_ps(_mm_movehdup_ps(scalesOfBlock))
                mins += unsafeBitCast(_mm256_mul_ps(mx, _mm256_loadu_ps(s + 8)), to: SIMD8<Float>.self)
            }
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(dd[0]), products(y), a0)
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(dd[1]), products(y + aStride), a1)
            a2 = _mm256_fmadd_ps(_mm256_set1_ps(dd[2]), products(y + 2 * aStride), a2)
            a3 = _mm256_fmadd_ps(_mm256_set1_ps(dd[3]), products(y + 3 * aStride), a3)
            a4 = _mm256_fmadd_ps(_mm256_set1_ps(dd[4]), products(y + 4 * aStride), a4)
            a5 = _mm256_fmadd_ps(_mm256_set1_ps(dd[5]), products(y + 5 * aStride), a5)
            a6 = _mm256_fmadd_ps(_mm256_set1_ps(dd[6]), products(y + 6 * aStride), a6)
            a7 = _mm256_fmadd_ps(_mm256_set1_ps(dd[7]), products(y + 7 * aStride), a7)
        }
        let sums = SIMD8<Float>(hsum(a0), hsum(a1), hsum(a2), hsum(a3), hsum(a4), hsum(a5), hsum(a6), hsum(a7))
        return F.hasMinimum ? sums + mins : sums
    }
}
#endif
