// IndexMem — kernels. Apache-2.0.

// MARK: - Weight storage types

/// How a weight matrix row is stored. Raw values are ggml's `ggml_type` numbers, so a
/// GGUF tensor type maps by raw value. Block layouts follow ggml exactly (see each file).
public enum WeightType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// Elements per block.
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        }
    }

    /// Bytes of one row of `count` elements (`count` must be a multiple of `blockElements`).
    @inlinable public func rowBytes(_ count: Int) -> Int { count / blockElements * blockBytes }

    /// The format activations are converted to before a dot product with this weight type,
    /// as ggml's `vec_dot_type` does, so results match llama.cpp's arithmetic.
    public var activationType: ActivationType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q4_0, .q5_0, .q8_0: return .q8_0
        case .q4_1, .q5_1: return .q8_1
        case .q4_K, .q5_K, .q6_K: return .q8_K
        }
    }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        }
    }
}

// MARK: - Activation formats

/// The format of an activation vector prepared for dot products with a weight type.
public enum ActivationType: Sendable, Equatable {
    /// Plain floats.
    case f32
    /// IEEE half floats.
    case f16
    /// bfloat16.
    case bf16
    /// 32-element blocks: f16 scale, 32 x int8 (34 bytes).
    case q8_0
    /// 32-element blocks: f16 scale, f16 scale x sum, 32 x int8 (36 bytes).
    case q8_1
    /// 256-element blocks: f32 scale, 256 x int8, 16 x int16 group sums (292 bytes).
    case q8_K

    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q8_0, .q8_1: return 32
        case .q8_K: return 256
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8_0: return 34
        case .q8_1: return 36
        case .q8_K: return 292
        }
    }

    /// Bytes of one activation row of `count` elements.
    @inlinable public func rowBytes(_ count: Int) -> Int { count / blockElements * blockBytes }
}
