// IndexMem — kernels. Apache-2.0.

// MARK: - Static dispatch over weight formats

/// A weight storage format with its row kernels as static functions, so generic loops over
/// it are specialised and the dot product is inlined (no call through a closure per row).
public protocol RowFormat {
    static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float
    static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int)
    /// One weight row against four activation rows `a + i * aStride`: the weight block is
    /// decoded once for all four (prefill's main saving).
    static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float>
    /// `dot` with one of llama.cpp's batched arithmetics (see `BatchArithmetic`).
    static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int, arithmetic: BatchArithmetic) -> Float
    /// `dot4` with one of llama.cpp's batched arithmetics.
    static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int, arithmetic: BatchArithmetic) -> SIMD4<Float>
}

extension RowFormat {
    @inlinable @inline(__always)
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int) -> SIMD4<Float> {
        SIMD4(dot(w, a, count: count), dot(w, a + aStride, count: count),
              dot(w, a + 2 * aStride, count: count), dot(w, a + 3 * aStride, count: count))
    }

    /// Formats whose products llama.cpp always computes with `ggml_vec_dot_*` arithmetic.
    @inlinable @inline(__always)
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int, arithmetic: BatchArithmetic) -> Float {
        dot(w, a, count: count)
    }

    @inlinable @inline(__always)
    public static func dot4(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, aStride: Int, count: Int, arithmetic: BatchArithmetic) -> SIMD4<Float> {
        dot4(w, a, aStride: aStride, count: count)
    }
}

extension F32Row: RowFormat {}
extension F16Row: RowFormat {}
extension BF16Row: RowFormat {}
extension Q4_0: RowFormat {}
extension Q4_1: RowFormat {}
extension Q5_0: RowFormat {}
extension Q5_1: RowFormat {}
extension Q8_0: RowFormat {}
extension Q4_K: RowFormat {}
extension Q5_K: RowFormat {}
extension Q6_K: RowFormat {}

extension WeightType {
    /// The format's kernels as a type, for generic specialisation.
    public var rowFormat: any RowFormat.Type {
        switch self {
        case .f32: return F32Row.self
        case .f16: return F16Row.self
        case .bf16: return BF16Row.self
        case .q4_0: return Q4_0.self
        case .q4_1: return Q4_1.self
        case .q5_0: return Q5_0.self
        case .q5_1: return Q5_1.self
        case .q8_0: return Q8_0.self
        case .q4_K: return Q4_K.self
        case .q5_K: return Q5_K.self
        case .q6_K: return Q6_K.self
        }
    }
}
