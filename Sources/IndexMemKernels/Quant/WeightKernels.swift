// IndexMem — kernels. Apache-2.0.

// MARK: - Kernels per weight type

/// The two row operations every weight type provides. Resolved once per matrix, so the
/// hot loop calls a known function instead of switching per row.
public struct WeightKernels: Sendable {
    /// `dot(weightRow, activationRow, count)`: activations in `type.activationType`.
    public let dot: @Sendable (UnsafeRawPointer, UnsafeRawPointer, Int) -> Float
    /// `dequantize(weightRow, out, count)`.
    public let dequantize: @Sendable (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void

    public init(
        dot: @escaping @Sendable (UnsafeRawPointer, UnsafeRawPointer, Int) -> Float,
        dequantize: @escaping @Sendable (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        self.dot = dot
        self.dequantize = dequantize
    }

    /// The kernels of a weight type.
    public static func of(_ type: WeightType) -> WeightKernels {
        switch type {
        case .f32: return WeightKernels(dot: { F32Row.dot($0, $1, count: $2) }, dequantize: { F32Row.dequantize($0, $1, count: $2) })
        case .f16: return WeightKernels(dot: { F16Row.dot($0, $1, count: $2) }, dequantize: { F16Row.dequantize($0, $1, count: $2) })
        case .bf16: return WeightKernels(dot: { BF16Row.dot($0, $1, count: $2) }, dequantize: { BF16Row.dequantize($0, $1, count: $2) })
        case .q4_0: return WeightKernels(dot: { Q4_0.dot($0, $1, count: $2) }, dequantize: { Q4_0.dequantize($0, $1, count: $2) })
        case .q4_1: return WeightKernels(dot: { Q4_1.dot($0, $1, count: $2) }, dequantize: { Q4_1.dequantize($0, $1, count: $2) })
        case .q5_0: return WeightKernels(dot: { Q5_0.dot($0, $1, count: $2) }, dequantize: { Q5_0.dequantize($0, $1, count: $2) })
        case .q5_1: return WeightKernels(dot: { Q5_1.dot($0, $1, count: $2) }, dequantize: { Q5_1.dequantize($0, $1, count: $2) })
        case .q8_0: return WeightKernels(dot: { Q8_0.dot($0, $1, count: $2) }, dequantize: { Q8_0.dequantize($0, $1, count: $2) })
        case .q4_K: return WeightKernels(dot: { Q4_K.dot($0, $1, count: $2) }, dequantize: { Q4_K.dequantize($0, $1, count: $2) })
        case .q5_K: return WeightKernels(dot: { Q5_K.dot($0, $1, count: $2) }, dequantize: { Q5_K.dequantize($0, $1, count: $2) })
        case .q6_K: return WeightKernels(dot: { Q6_K.dot($0, $1, count: $2) }, dequantize: { Q6_K.dequantize($0, $1, count: $2) })
        }
    }
}
