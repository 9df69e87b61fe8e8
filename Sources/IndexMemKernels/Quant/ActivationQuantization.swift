// IndexMem — kernels. Apache-2.0.
//
// Activations are quantized the way ggml's CPU backend does before a quantized dot product
// (`quantize_row_q8_0/q8_1/q8_K`), including the f16 rounding of stored scales and
// round-half-to-even, so our matrix products reproduce llama.cpp's to float rounding.

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
    @inlinable
    public static func quantizeQ8_K(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / 256) {
            let src = x + b * 256
            let block = out + b * 292
            var amax: Float = 0
            var maxValue: Float = 0
            for j in 0..<256 {
                let ax = abs(src[j])
                if ax > amax { amax = ax; maxValue = src[j] }
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
}
