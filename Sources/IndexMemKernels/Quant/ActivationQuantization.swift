// IndexMem — kernels. Apache-2.0.
//
// Activations are quantized the way ggml's CPU backend does before a quantized dot product
// (`quantize_row_q8_0/q8_1/q8_K`), including the f16 rounding of stored scales and
// round-half-to-even, so our matrix products reproduce llama.cpp's to float rounding.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// MARK: - Activation quantization

public enum ActivationQuantizer {
    /// Converts `count` floats to `type` into `out` (`type.rowBytes(count)` bytes).
    /// `count` must be a multiple of `type.blockElements`.
    @inlinable
    public static func quantize(_ type: ActivationType, _ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        switch type {
        case .f32: out.copyMemory(from: x, byteCount: count * 4)
        case .f16: Half.convert(x, to: out.assumingMemoryBound(to: UInt16.self), count: count)
        case .bf16:
            let o = out.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { o[i] = BFloat16Conversion.fromFloat(x[i]) }
        case .q8_0: quantizeQ8_0(x, count: count, into: out)
        case .q8_1: quantizeQ8_1(x, count: count, into: out)
        case .q8_K: quantizeQ8_K(x, count: count, into: out)
        }
    }

    @inlinable
    static func blockScale(_ x: UnsafePointer<Float>) -> (amax: Float, v: SIMD32<Float>) {
        let v = UnsafeRawPointer(x).loadUnaligned(as: SIMD32<Float>.self)
        let a = v.replacing(with: -v, where: v .< 0)
        return (a.max(), v)
    }

    /// 34-byte blocks: f16 d, 32 x int8.
    @inlinable
    public static func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        #if arch(x86_64)
        for b in 0..<(count / 32) {
            let block = out + b * 34
            let (d, _) = quantizeBlockAVX2(x + b * 32, into: block + 2)
            block.storeBytes(of: Half.bits(d), as: UInt16.self)
        }
        #else
        quantizeQ8_0Portable(x, count: count, into: out)
        #endif
    }

    @inlinable
    public static func quantizeQ8_0Portable(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / 32) {
            let (amax, v) = blockScale(x + b * 32)
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            let block = out + b * 34
            block.storeBytes(of: Half.bits(d), as: UInt16.self)
            let q = SIMD32<Int32>((v * id).rounded(.toNearestOrEven))
            block.advanced(by: 2).storeBytes(of: SIMD32<Int8>(truncatingIfNeeded: q), as: SIMD32<Int8>.self)
        }
    }

    /// 36-byte blocks: f16 d, f16 s = d * sum(q), 32 x int8.
    @inlinable
    public static func quantizeQ8_1(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        #if arch(x86_64)
        for b in 0..<(count / 32) {
            let block = out + b * 36
            let (d, sum) = quantizeBlockAVX2(x + b * 32, into: block + 4)
            block.storeBytes(of: Half.bits(d), as: UInt16.self)
            block.storeBytes(of: Half.bits(d * Float(sum)), toByteOffset: 2, as: UInt16.self)
        }
        #else
        quantizeQ8_1Portable(x, count: count, into: out)
        #endif
    }

    @inlinable
    public static func quantizeQ8_1Portable(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / 32) {
            let (amax, v) = blockScale(x + b * 32)
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            let block = out + b * 36
            let q = SIMD32<Int32>((v * id).rounded(.toNearestOrEven))
            block.storeBytes(of: Half.bits(d), as: UInt16.self)
            block.storeBytes(of: Half.bits(d * Float(q.wrappedSum())), toByteOffset: 2, as: UInt16.self)
            block.advanced(by: 4).storeBytes(of: SIMD32<Int8>(truncatingIfNeeded: q), as: SIMD32<Int8>.self)
        }
    }

    /// 292-byte blocks: f32 d, 256 x int8, 16 x int16 sums of 16 consecutive values.
    /// Matches `quantize_row_q8_K_ref`: the scale maps the signed extreme to -127.
    /// - Parameter positiveTies: take the scale's sign from `+max` whenever a value equals
    ///   `+max` (ggml's `ggml_quantize_mat_q8_K_4x8`, used for the activations of repacked Q4_K
    ///   products); otherwise from the first value of largest magnitude (`quantize_row_q8_K`).
    ///   The two differ only when a block holds both `+max` and `-max`.
    @inlinable
    public static func quantizeQ8_K(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer, positiveTies: Bool = false) {
        #if arch(x86_64)
        for b in 0..<(count / 256) { quantizeQ8_KBlockAVX2(x + b * 256, into: out + b * 292, positiveTies: positiveTies) }
        #else
        quantizeQ8_KPortable(x, count: count, into: out, positiveTies: positiveTies)
        #endif
    }

    /// The scalar `quantizeQ8_K` (reference for the SIMD path, byte for byte).
    @inlinable
    public static func quantizeQ8_KPortable(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer, positiveTies: Bool = false) {
        for b in 0..<(count / 256) {
            let src = x + b * 256
            let block = out + b * 292
            var amax: Float = 0
            var maxValue: Float = 0
            for j in 0..<256 {
                let ax = abs(src[j])
                if ax > amax { amax = ax; maxValue = src[j] }
            }
            if positiveTies && amax > 0 {
                maxValue = (0..<256).contains { src[$0] == amax } ? amax : -amax
            }
            let qs = (block + 4).assumingMemoryBound(to: Int8.self)
            let sums = (block + 260).assumingMemoryBound(to: Int16.self)
            if amax == 0 {
                block.storeBytes(of: Float(0), as: Float.self)
                qs.initialize(repeating: 0, count: 256)
                sums.initialize(repeating: 0, count: 16)
                continue
            }
            let iscale = -127 / maxValue
            for j in 0..<256 {
                let v = Int32((iscale * src[j]).rounded(.toNearestOrEven))
                qs[j] = Int8(min(127, v))
            }
            for g in 0..<16 {
                var s: Int32 = 0
                for j in 0..<16 { s += Int32(qs[g * 16 + j]) }
                sums[g] = Int16(s)
            }
            block.storeBytes(of: 1 / iscale, as: Float.self)
        }
    }

    #if arch(x86_64)
    /// One Q8_K block of 256 with the arithmetic of the scalar path: the first value of
    /// largest magnitude sets iscale = -127 / value, q = min(127, round-half-even(iscale * x))
    /// (`vcvtps2dq`; the int8 pack saturates 128 to 127), group sums by `vpmaddubsw`.
    @inlinable @inline(__always)
    static func quantizeQ8_KBlockAVX2(_ x: UnsafePointer<Float>, into block: UnsafeMutableRawPointer, positiveTies: Bool) {
        let p = UnsafeRawPointer(x)
        let signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff))
        var m = _mm256_setzero_ps()
        for k in 0..<32 { m = _mm256_max_ps(m, _mm256_and_ps(p.loadUnaligned(fromByteOffset: 32 * k, as: __m256.self), signMask)) }
        let h = m.lowHalf, hh = _mm_max_ps(h, m.highHalf)
        let amax = max(max(hh[0], hh[1]), max(hh[2], hh[3]))
        if !(amax > 0) {
            block.storeBytes(of: Float(0), as: Float.self)
            (block + 4).initializeMemory(as: UInt8.self, repeating: 0, count: 288)
            return
        }
        // The first element whose magnitude is amax, with its sign (magnitudes are equal
        // exactly when their bit patterns are).
        var maxValue: Float = 0
        let target = _mm256_set1_epi32(Int32(bitPattern: amax.bitPattern))
        if positiveTies {
            maxValue = -amax
            for k in 0..<32 {
                let v = _mm256_castps_si256(p.loadUnaligned(fromByteOffset: 32 * k, as: __m256.self))
                if _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, target))) != 0 { maxValue = amax; break }
            }
        } else {
            for k in 0..<32 {
                let v = _mm256_castps_si256(_mm256_and_ps(p.loadUnaligned(fromByteOffset: 32 * k, as: __m256.self), signMask))
                let hit = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, target)))
                if hit != 0 { maxValue = x[8 * k + hit.trailingZeroBitCount]; break }
            }
        }
        let iscale = -127 / maxValue
        let mul = _mm256_set1_ps(iscale)
        let order = unsafeBitCast(SIMD8<Int32>(0, 4, 1, 5, 2, 6, 3, 7), to: __m256i.self)
        for k in 0..<8 {
            let o = 128 * k
            let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(p.loadUnaligned(fromByteOffset: o, as: __m256.self), mul))
            let i1 = _mm256_cvtps_epi32(_mm256_mul_ps(p.loadUnaligned(fromByteOffset: o + 32, as: __m256.self), mul))
            let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(p.loadUnaligned(fromByteOffset: o + 64, as: __m256.self), mul))
            let i3 = _mm256_cvtps_epi32(_mm256_mul_ps(p.loadUnaligned(fromByteOffset: o + 96, as: __m256.self), mul))
            let bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
            (block + 4 + 32 * k).storeBytes(of: _mm256_permutevar8x32_epi32(bytes, order), as: __m256i.self)
        }
        // Group sums of 16: pairs by maddubs (ones x q), then hadd trees give
        // [g0, g2, g4, g6 | g1, g3, g5, g7] per 128 values; interleaving the halves restores order.
        let ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1)
        @inline(__always) func sums(_ q: UnsafeRawPointer) -> __m256i {
            let m0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, loadBytes(q)), ones16)
            let m1 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, loadBytes(q + 32)), ones16)
            let m2 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, loadBytes(q + 64)), ones16)
            let m3 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, loadBytes(q + 96)), ones16)
            return _mm256_hadd_epi32(_mm256_hadd_epi32(m0, m1), _mm256_hadd_epi32(m2, m3))
        }
        let packed = _mm256_packs_epi32(sums(block + 4), sums(block + 132))
        (block + 260).storeBytes(of: _mm_unpacklo_epi16(packed.lowHalf, packed.highHalf), as: __m128i.self)
        (block + 276).storeBytes(of: _mm_unpackhi_epi16(packed.lowHalf, packed.highHalf), as: __m128i.self)
        block.storeBytes(of: 1 / iscale, as: Float.self)
    }

    /// One block of 32: scale d = amax / 127, q = round-half-even(x * 127 / amax) (the MXCSR
    /// default that `vcvtps2dq` uses, as ggml's AVX2 code). Writes 32 int8; returns d and sum(q).
    @inlinable @inline(__always)
    static func quantizeBlockAVX2(_ x: UnsafePointer<Float>, into q: UnsafeMutableRawPointer) -> (Float, Int32) {
        let p = UnsafeRawPointer(x)
        let v0 = p.loadUnaligned(as: SIMD8<Float>.self), v1 = p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        let v2 = p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), v3 = p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        let signMask = SIMD8<UInt32>(repeating: 0x7fff_ffff)
        func absv(_ v: SIMD8<Float>) -> SIMD8<Float> { unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & signMask, to: SIMD8<Float>.self) }
        func maxv(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
            _mm256_max_ps(a, b)
        }
        let m = maxv(maxv(absv(v0), absv(v1)), maxv(absv(v2), absv(v3)))
        let amax = max(max(max(m[0], m[1]), max(m[2], m[3])), max(max(m[4], m[5]), max(m[6], m[7])))
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        let mul = SIMD8<Float>(repeating: id)
        let i0 = _mm256_cvtps_epi32(v0 * mul)
        let i1 = _mm256_cvtps_epi32(v1 * mul)
        let i2 = _mm256_cvtps_epi32(v2 * mul)
        let i3 = _mm256_cvtps_epi32(v3 * mul)
        let sum = hsumInt(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)))
        // packs work within 128-bit lanes; the permute restores element order.
        let w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3)
        let b = _mm256_packs_epi16(w01, w23)
        let ordered = _mm256_permutevar8x32_epi32(b, unsafeBitCast(SIMD8<Int32>(0, 4, 1, 5, 2, 6, 3, 7), to: __m256i.self))
        q.storeBytes(of: ordered, as: __m256i.self)
        return (d, sum)
    }
    #endif
}
