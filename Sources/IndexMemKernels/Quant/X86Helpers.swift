// IndexMem — kernels. Apache-2.0.
//
// Integer dot products are where Swift's portable SIMD types lose most (LLVM does not form
// `vpmaddubsw` from them; measured 4-6x slower than the intrinsic path). On x86-64 we use
// the compiler's built-in AVX2 intrinsics; every other target uses the portable code in
// each format's file, which is also the reference the tests compare against.

#if arch(x86_64)
import _Builtin_intrinsics.intel

// MARK: - AVX2 helpers (the shapes of ggml's x86 helpers)

/// Sum of 8 lanes in ggml's `hsum_float_8` order, so dot products round as llama.cpp's.
@inline(__always) @usableFromInline
func hsum(_ v: __m256) -> Float {
    VectorMath.horizontalSum(v)
}

@inline(__always) @usableFromInline
func hsumInt(_ v: __m256i) -> Int32 {
    let i = unsafeBitCast(v, to: SIMD8<Int32>.self)
    return (i.lowHalf &+ i.highHalf).wrappedSum()
}

/// 32 unsigned bytes times 32 signed bytes, summed in pairs to 8 x float.
@inline(__always) @usableFromInline
func mulSumU8S8(_ ux: __m256i, _ sy: __m256i) -> __m256 {
    let dot16 = _mm256_maddubs_epi16(ux, sy)
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot16, _mm256_set1_epi16(1)))
}

/// 32 signed bytes times 32 signed bytes, summed in pairs to 8 x float.
@inline(__always) @usableFromInline
func mulSumS8S8(_ x: __m256i, _ y: __m256i) -> __m256 {
    mulSumU8S8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// 16 bytes of nibbles to 32 bytes: low nibbles first, then high nibbles (ggml order).
@inline(__always) @usableFromInline
func bytesFromNibbles(_ p: UnsafeRawPointer) -> __m256i {
    let tmp = p.loadUnaligned(as: SIMD16<UInt8>.self)
    return unsafeBitCast(SIMD32<UInt8>(lowHalf: tmp & 0x0f, highHalf: tmp &>> 4), to: __m256i.self)
}

@inline(__always) @usableFromInline
func loadBytes(_ p: UnsafeRawPointer) -> __m256i {
    _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self))
}
#endif
