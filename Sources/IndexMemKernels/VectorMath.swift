// IndexMem — kernels. Apache-2.0.

import Foundation

// MARK: - Float vector math

/// SIMD float routines on raw buffers. Shapes are given by `count`; no allocation.
public enum VectorMath {
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 32 <= count {
            s0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            s1.addProduct(ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self))
            i += 32
        }
        while i + 8 <= count {
            let p = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s0.lowHalf += p
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// `y += a * x`.
    @inlinable
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= count {
            var v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            v.addProduct(a, rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { y[i] += a * x[i]; i += 1 }
    }

    /// `y += x`.
    @inlinable
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= count {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { y[i] += x[i]; i += 1 }
    }

    /// `x *= s`.
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        for i in 0..<count { x[i] *= s }
    }

    /// RMSNorm as ggml computes it: `out = x / sqrt(mean(x^2) + eps) * weight`. The squares
    /// are summed in double, the mean and scale rounded to float (`ggml_compute_forward_rms_norm_f32`).
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, eps: Float, out: UnsafeMutablePointer<Float>, count: Int) {
        var sum: Double = 0
        for i in 0..<count { sum += Double(x[i] * x[i]) }
        let mean = Float(sum / Double(count))
        let scale = 1 / (mean + eps).squareRoot()
        if let w = weight {
            for i in 0..<count { out[i] = x[i] * scale * w[i] }
        } else {
            for i in 0..<count { out[i] = x[i] * scale }
        }
    }

    /// In-place softmax; returns the sum of exponentials before normalisation.
    @inlinable @discardableResult
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<count { let e = expf(x[i] - m); x[i] = e; s += e }
        let inv = 1 / s
        for i in 0..<count { x[i] *= inv }
        return s
    }

    /// SwiGLU: `gate = silu(gate) * up`, in place on `gate`, with ggml's vector exp
    /// (`ggml_vec_swiglu_f32`) on whole groups of 8 and libm's `expf` on the rest.
    @inlinable
    public static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        var i = 0
        let rg = UnsafeMutableRawPointer(gate), ru = UnsafeRawPointer(up)
        while i + 8 <= count {
            let x = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y = ru.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            rg.storeBytes(of: silu(x) * y, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
            i += 1
        }
    }

    /// GELU-gated unit: `gate = gelu(gate) * up`, in place on `gate`, as ggml's
    /// `ggml_vec_geglu_f32` (built with `GGML_GELU_FP16`): `gate <= -10` gives 0, `gate >= 10`
    /// gives `gate * up`, otherwise gelu is looked up at `gate` rounded to f16, from a table
    /// of f16 results (`ggml_table_gelu_f16`).
    @inlinable
    public static func geglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        let table = geluTable
        for i in 0..<count {
            let x = gate[i]
            if x <= -10 {
                gate[i] = 0
            } else if x >= 10 {
                gate[i] = x * up[i]
            } else {
                gate[i] = table[Int(Float16(x).bitPattern)] * up[i]
            }
        }
    }

    /// GELU, tanh approximation, with the arithmetic of ggml's `ggml_gelu_f32` as GCC compiles
    /// it (`1 + 0.044715 x x` contracted into one fused multiply-add).
    @inlinable
    public static func gelu(_ x: Float) -> Float {
        let inner = (1 as Float).addingProduct(0.044715 * x, x)
        return 0.5 * x * (1 + tanhf(0.79788456080286535587989211986876 * x * inner))
    }

    /// `ggml_table_gelu_f16` widened to floats: gelu of every f16 value, rounded to f16.
    nonisolated(unsafe) public static let geluTable: UnsafeMutablePointer<Float> = {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 16)
        for h in 0..<(1 << 16) {
            let x = Float(Float16(bitPattern: UInt16(h)))
            table[h] = Float(Float16(gelu(x)))
        }
        return table
    }()

    /// `x / (1 + exp(-x))` as ggml's `ggml_v_silu`.
    @inlinable @inline(__always)
    public static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + exp(SIMD8<Float>() - x))
    }

    /// Sum of 8 lanes in the order of ggml's `hsum_float_8`: ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)).
    @inlinable @inline(__always)
    public static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        let r = v.highHalf + v.lowHalf
        return (r[0] + r[2]) + (r[1] + r[3])
    }

    /// `exp` of 8 lanes with ggml's AVX2 approximation (`ggml_v_expf`, max error ~1.5 ulp),
    /// bit for bit, so softmax and SiLU match llama.cpp. `exp(-inf)` is 0.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        typealias U = SIMD8<UInt32>
        let r = V(repeating: 0x1.8p23)
        let z = r.addingProduct(x, V(repeating: 0x1.715476p+0))
        let n = z - r
        let b = x.addingProduct(-n, V(repeating: 0x1.62e4p-1)).addingProduct(-n, V(repeating: 0x1.7f7d1cp-20))
        let zb = unsafeBitCast(z, to: U.self)
        let e = zb &<< 23
        let k = unsafeBitCast(e &+ unsafeBitCast(V(repeating: 1), to: U.self), to: V.self)
        let absN = unsafeBitCast(unsafeBitCast(n, to: U.self) & 0x7fff_ffff, to: V.self)
        let c = absN .> 126
        let u = b * b
        let p1 = V(repeating: 0x1.573e2ep-5).addingProduct(V(repeating: 0x1.0e4020p-7), b)
        let p2 = V(repeating: 0x1.fffdb6p-2).addingProduct(V(repeating: 0x1.555e66p-3), b)
        let j = (V(repeating: 0x1.ffffecp-1) * b).addingProduct(p2.addingProduct(p1, u), u)
        if !any(c) { return k.addingProduct(j, k) }
        let g = U(repeating: 0x8200_0000).replacing(with: 0, where: .!(n .<= 0))
        let s1 = unsafeBitCast(g &+ 0x7f00_0000, to: V.self)
        let s2 = unsafeBitCast(e &- g, to: V.self)
        let d = absN .> 192
        let slow = (s2.addingProduct(s2, j)) * s1
        let normal = k.addingProduct(k, j)
        return (s1 * s1).replacing(with: slow.replacing(with: normal, where: .!c), where: .!d)
    }

    /// Index of the largest value (the lowest index among ties).
    @inlinable
    public static func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bv = -Float.infinity
        for i in 0..<count where x[i] > bv { bv = x[i]; best = i }
        return best
    }
}
