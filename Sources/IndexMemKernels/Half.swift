// IndexMem — kernels. Apache-2.0.

// MARK: - Half and bfloat16 conversions

/// IEEE binary16 conversions (F16C instructions where the target has them).
public enum Half {
    @inlinable @inline(__always)
    public static func toFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    @inlinable @inline(__always)
    public static func bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    @inlinable
    public static func convert(_ x: UnsafePointer<Float>, to out: UnsafeMutablePointer<UInt16>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD8<Float16>(v), as: SIMD8<Float16>.self)
            i += 8
        }
        while i < count { out[i] = bits(x[i]); i += 1 }
    }

    @inlinable
    public static func convert(_ x: UnsafePointer<UInt16>, to out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let h = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float16>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD8<Float>(h), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] = toFloat(x[i]); i += 1 }
    }
}

/// bfloat16: the upper 16 bits of a float, rounded to nearest even (as ggml's
/// `GGML_FP32_TO_BF16`, which also keeps NaNs quiet).
public enum BFloat16Conversion {
    @inlinable @inline(__always)
    public static func toFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @inlinable @inline(__always)
    public static func fromFloat(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if (u & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
        return UInt16(truncatingIfNeeded: (u &+ (0x7fff &+ ((u >> 16) & 1))) >> 16)
    }
}
