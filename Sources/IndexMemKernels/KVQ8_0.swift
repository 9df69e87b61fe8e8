// IndexMem — kernels. Apache-2.0.
//
// Q8_0 key/value entries (llama.cpp's `type_k = type_v = q8_0`): a row of d values is d / 32
// blocks of ggml's `block_q8_0` (an f16 scale, then 32 int8; 34 bytes per 32 values where f16
// takes 64). Entries are quantized as ggml's `quantize_row_q8_0_ref`: d = amax / 127, q =
// roundf(x / d), half away from zero (the weight path's activation quantizer rounds half to
// even, as llama.cpp's AVX2 code does; KV entries follow the reference rounding on purpose).
//
// Attention over such entries follows llama.cpp's flash-attention CPU path: the query is
// quantized to Q8_0 as well (the key type's vec_dot type), each score is
// `ggml_vec_dot_q8_0_q8_0` (per block fma(d_k d_q, int8 dot, acc), then `hsum_float_8`), and
// the output is the probabilities times the dequantized values, in float.
// Only the scores and the weighted sum live here; the softmax and masks are the cache's.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Q8_0 entries

public enum KVQ8_0 {
    public static let blockValues = 32
    public static let blockBytes = 34

    /// Whether rows of `count` values split into whole blocks.
    @inlinable public static func supports(count: Int) -> Bool { count > 0 && count % blockValues == 0 }

    /// Bytes of one row of `count` values (a multiple of 32).
    @inlinable public static func rowBytes(count: Int) -> Int { count / blockValues * blockBytes }

    /// `quantize_row_q8_0_ref`: `count` floats (a multiple of 32) into `count / 32` blocks.
    @inlinable
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        #if arch(x86_64)
        for b in 0..<(count / blockValues) { quantizeBlockAVX2(x + b &* blockValues, into: out + b &* blockBytes) }
        #else
        quantizeReference(x, count: count, into: out)
        #endif
    }

    /// The portable form of `quantize` (the tests' reference).
    @inlinable
    public static func quantizeReference(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / blockValues) {
            let v = UnsafeRawPointer(x + b * blockValues).loadUnaligned(as: SIMD32<Float>.self)
            let amax = (v.replacing(with: -v, where: v .< 0)).max()
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            // roundf: LLVM lowers `.toNearestOrAwayFromZero` to trunc(x + copysign(0.49999997, x)), exact.
            let q = SIMD32<Int8>(truncatingIfNeeded: SIMD32<Int32>((v * id).rounded(.toNearestOrAwayFromZero)))
            let block = out + b * blockBytes
            block.storeBytes(of: Half.bits(d), as: UInt16.self)
            block.storeBytes(of: q, toByteOffset: 2, as: SIMD32<Int8>.self)
        }
    }

    /// Blocks back to floats (`count` a multiple of 32).
    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / blockValues) {
            let block = src + b * blockBytes
            let d = Half.toFloat(block.loadUnaligned(as: UInt16.self))
            let q = SIMD32<Float>(SIMD32<Int32>(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 2, as: SIMD32<Int8>.self)))
            UnsafeMutableRawPointer(dst + b * blockValues).storeBytes(of: q * d, as: SIMD32<Float>.self)
        }
    }

    #if arch(x86_64)
    /// One block as `quantizeReference` writes it. `roundf` is trunc(x + copysign(0.49999997, x)),
    /// exact for every float (LLVM's own lowering of `roundf` on x86).
    @inlinable @inline(__always)
    static func quantizeBlockAVX2(_ x: UnsafePointer<Float>, into block: UnsafeMutableRawPointer) {
        let v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24)
        let sign = _mm256_set1_ps(-0.0)
        let m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                              _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)))
        let lanes = unsafeBitCast(m, to: SIMD8<Float>.self)
        let amax = pointwiseMax(lanes.lowHalf, lanes.highHalf).max()
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        let mul = _mm256_set1_ps(id), half = _mm256_set1_ps(0.49999997)
        @inline(__always) func q(_ v: __m256) -> __m256i {
            let r = _mm256_mul_ps(v, mul)
            return _mm256_cvttps_epi32(_mm256_add_ps(r, _mm256_or_ps(_mm256_and_ps(r, sign), half)))
        }
        // packs work within 128-bit lanes; the permute restores element order.
        let b = _mm256_packs_epi16(_mm256_packs_epi32(q(v0), q(v1)), _mm256_packs_epi32(q(v2), q(v3)))
        let ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        block.storeBytes(of: Half.bits(d), as: UInt16.self)
        block.storeBytes(of: ordered, toByteOffset: 2, as: __m256i.self)
    }

    /// The f16 scale at the start of a block as a float. Reads 4 bytes (the scale and the
    /// block's first two quants) with a plain load instead of a 16-bit insert.
    @inlinable @inline(__always)
    static func scale(_ block: UnsafeRawPointer) -> Float {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_castps_si128(_mm_load_ss(block.assumingMemoryBound(to: Float.self)))))
    }
    #endif

    // MARK: Scores

    /// `scores[j] = query . key_j` for `j` in `lo..<hi`, each as `ggml_vec_dot_q8_0_q8_0`.
    /// - Parameters:
    ///   - query: one quantized row (`blocks` blocks).
    ///   - keys: rows of `rowBytes` bytes, row `j` at `keys + j * rowBytes`.
    @inlinable
    public static func scores(query: UnsafeRawPointer, keys: UnsafeRawPointer, rowBytes: Int, blocks: Int, lo: Int, hi: Int,
                              into scores: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        // The weight path's Q8_0 kernels with the query as the "weight" row and four keys as
        // its "activation" rows: the same block products (`maddubs(|q|, sign(k, q))`, no pair
        // sum saturates as |q|, |k| <= 127), scales and reduction order as one key at a time.
        let count = blocks &* blockValues
        var j = lo
        while j &+ 4 <= hi {
            let four = Q8_0.dot4(query, keys + j &* rowBytes, aStride: rowBytes, count: count)
            UnsafeMutableRawPointer(scores + j).storeBytes(of: four, as: SIMD4<Float>.self)
            j &+= 4
        }
        while j < hi {
            scores[j] = Q8_0.dot(keys + j &* rowBytes, query, count: count)
            j &+= 1
        }
        #else
        scoresReference(query: query, keys: keys, rowBytes: rowBytes, blocks: blocks, lo: lo, hi: hi, into: scores)
        #endif
    }

    /// The scalar form of `scores` (the tests' reference and the non-x86 path): the same block
    /// products, summed in the same lanes and order as the AVX2 code.
    @inlinable
    public static func scoresReference(query: UnsafeRawPointer, keys: UnsafeRawPointer, rowBytes: Int, blocks: Int, lo: Int, hi: Int,
                                       into scores: UnsafeMutablePointer<Float>) {
        for j in lo..<hi {
            var acc = SIMD8<Float>()
            for b in 0..<blocks {
                let k = keys + (j &* rowBytes &+ b &* blockBytes), q = query + b &* blockBytes
                let d = Half.toFloat(k.loadUnaligned(as: UInt16.self)) * Half.toFloat(q.loadUnaligned(as: UInt16.self))
                let qk = SIMD32<Int32>(truncatingIfNeeded: k.loadUnaligned(fromByteOffset: 2, as: SIMD32<Int8>.self))
                let qq = SIMD32<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 2, as: SIMD32<Int8>.self))
                let p = qk &* qq
                // `_mm256_madd_epi16(_mm256_maddubs_epi16(...), 1)`: lane i sums elements 4i..<4i+4.
                var lanes = SIMD8<Int32>()
                for i in 0..<8 {
                    let pair0: Int32 = p[4 &* i] &+ p[4 &* i &+ 1]
                    let pair1: Int32 = p[4 &* i &+ 2] &+ p[4 &* i &+ 3]
                    lanes[i] = pair0 &+ pair1
                }
                acc = acc.addingProduct(SIMD8<Float>(repeating: d), SIMD8<Float>(lanes))
            }
            scores[j] = VectorMath.horizontalSum(acc)
        }
    }

    // MARK: Weighted sum of values

    /// `out[i] = sum_j p[j] * value_j[i]` over `j` in `lo..<hi` (values dequantized on the fly).
    /// - Parameters:
    ///   - values: rows of `rowBytes` bytes, `blocks` blocks each.
    ///   - out: `blocks * 32` floats, overwritten.
    @inlinable
    public static func accumulate(probabilities p: UnsafePointer<Float>, values: UnsafeRawPointer, rowBytes: Int, blocks: Int,
                                  lo: Int, hi: Int, into out: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        accumulateAVX2(probabilities: p, values: values, rowBytes: rowBytes, blocks: blocks, lo: lo, hi: hi, into: out)
        #else
        accumulateReference(probabilities: p, values: values, rowBytes: rowBytes, blocks: blocks, lo: lo, hi: hi, into: out)
        #endif
    }

    /// The scalar form of `accumulate`: the same products added in the same order.
    @inlinable
    public static func accumulateReference(probabilities p: UnsafePointer<Float>, values: UnsafeRawPointer, rowBytes: Int, blocks: Int,
                                           lo: Int, hi: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: blocks * blockValues)
        for j in lo..<hi {
            for b in 0..<blocks {
                let block = values + (j &* rowBytes &+ b &* blockBytes)
                let w = p[j] * Half.toFloat(block.loadUnaligned(as: UInt16.self))
                for i in 0..<blockValues {
                    let v = Float(block.load(fromByteOffset: 2 &+ i, as: Int8.self))
                    out[b &* blockValues &+ i] = out[b &* blockValues &+ i].addingProduct(w, v)
                }
            }
        }
    }

    #if arch(x86_64)
    /// Two blocks (64 output values, eight registers) at a time over every slot, so each output
    /// register is loaded and stored once per pair of blocks.
    @inlinable
    public static func accumulateAVX2(probabilities p: UnsafePointer<Float>, values: UnsafeRawPointer, rowBytes: Int, blocks: Int,
                                      lo: Int, hi: Int, into out: UnsafeMutablePointer<Float>) {
        @inline(__always) func widen(_ src: UnsafeRawPointer) -> __m256 {
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(src.loadUnaligned(as: Int64.self))))
        }
        var b = 0
        while b &+ 2 <= blocks {
            var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
            var a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps()
            var row = values + (lo &* rowBytes &+ b &* blockBytes)
            for j in lo..<hi {
                let w = p[j]
                let s0 = _mm256_set1_ps(w * scale(row))
                let s1 = _mm256_set1_ps(w * scale(row + blockBytes))
                a0 = _mm256_fmadd_ps(s0, widen(row + 2), a0)
                a1 = _mm256_fmadd_ps(s0, widen(row + 10), a1)
                a2 = _mm256_fmadd_ps(s0, widen(row + 18), a2)
                a3 = _mm256_fmadd_ps(s0, widen(row + 26), a3)
                a4 = _mm256_fmadd_ps(s1, widen(row + 36), a4)
                a5 = _mm256_fmadd_ps(s1, widen(row + 44), a5)
                a6 = _mm256_fmadd_ps(s1, widen(row + 52), a6)
                a7 = _mm256_fmadd_ps(s1, widen(row + 60), a7)
                row += rowBytes
            }
            let o = UnsafeMutableRawPointer(out + b &* blockValues)
            o.storeBytes(of: a0, as: __m256.self); o.storeBytes(of: a1, toByteOffset: 32, as: __m256.self)
            o.storeBytes(of: a2, toByteOffset: 64, as: __m256.self); o.storeBytes(of: a3, toByteOffset: 96, as: __m256.self)
            o.storeBytes(of: a4, toByteOffset: 128, as: __m256.self); o.storeBytes(of: a5, toByteOffset: 160, as: __m256.self)
            o.storeBytes(of: a6, toByteOffset: 192, as: __m256.self); o.storeBytes(of: a7, toByteOffset: 224, as: __m256.self)
            b &+= 2
        }
        if b < blocks {
            var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
            var row = values + (lo &* rowBytes &+ b &* blockBytes)
            for j in lo..<hi {
                let s0 = _mm256_set1_ps(p[j] * scale(row))
                a0 = _mm256_fmadd_ps(s0, widen(row + 2), a0)
                a1 = _mm256_fmadd_ps(s0, widen(row + 10), a1)
                a2 = _mm256_fmadd_ps(s0, widen(row + 18), a2)
                a3 = _mm256_fmadd_ps(s0, widen(row + 26), a3)
                row += rowBytes
            }
            let o = UnsafeMutableRawPointer(out + b &* blockValues)
            o.storeBytes(of: a0, as: __m256.self); o.storeBytes(of: a1, toByteOffset: 32, as: __m256.self)
            o.storeBytes(of: a2, toByteOffset: 64, as: __m256.self); o.storeBytes(of: a3, toByteOffset: 96, as: __m256.self)
        }
    }
    #endif
}
