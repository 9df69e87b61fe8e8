// IndexMem — model. Apache-2.0.

import IndexMemGGUF
import IndexMemKernels

// MARK: - Errors

/// Problems with a model file that parses as GGUF but cannot be run.
public enum ModelError: Error, CustomStringConvertible, Sendable {
    case unknownArchitecture(String, supported: [String])
    case missingArchitecture
    case invalidConfiguration(String)
    case tensorShape(name: String, expected: [Int], found: [Int])
    case unsupportedTensorType(name: String, type: String)
    case contextExceeded(requested: Int, limit: Int)
    case invalidToken(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .unknownArchitecture(let a, let s):
            return "unknown model architecture '\(a)' (general.architecture); supported: \(s.joined(separator: ", "))"
        case .missingArchitecture: return "GGUF file has no general.architecture: not a model file?"
        case .invalidConfiguration(let m): return "invalid model configuration: \(m)"
        case .tensorShape(let n, let e, let f): return "tensor '\(n)' has shape \(f), expected \(e)"
        case .unsupportedTensorType(let n, let t): return "tensor '\(n)' has type \(t), which cannot be used there"
        case .contextExceeded(let r, let l):
            return "the sequence needs \(r) positions but the model was trained for \(l) (context_length)"
        case .invalidToken(let t, let v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        }
    }
}

// MARK: - Configuration

/// Everything the forward pass needs to know about an architecture, decoded from GGUF metadata.
/// Architecture differences are fields read by the one forward pass.
public struct ModelConfiguration: Sendable, Codable, Equatable {
    public var architecture: String
    public var layerCount: Int
    public var embeddingDimension: Int
    public var feedForwardDimension: Int
    public var queryHeads: Int
    public var kvHeads: Int
    public var headDimension: Int
    public var contextLength: Int
    public var vocabularySize: Int
    public var rmsNormEpsilon: Float
    public var ropeBase: Float
    public var ropeDimensions: Int
    public var ropeHalves: Bool
    public var ropeFreqScale: Float
    /// Attention uses a sliding window of this size on every layer (Mistral), if set.
    public var slidingWindow: Int?

    public var queryDimension: Int { queryHeads * headDimension }
    public var kvDimension: Int { kvHeads * headDimension }

    /// Architectures this engine runs.
    public static let supportedArchitectures = ["llama"]

    /// Reads and validates the configuration of a GGUF model.
    public init(gguf: GGUFFile) throws {
        guard let arch = try gguf.string("general.architecture") else { throw ModelError.missingArchitecture }
        guard Self.supportedArchitectures.contains(arch) else {
            throw ModelError.unknownArchitecture(arch, supported: Self.supportedArchitectures)
        }
        architecture = arch
        func key(_ k: String) -> String { "\(arch).\(k)" }
        layerCount = try gguf.requireInt(key("block_count"))
        embeddingDimension = try gguf.requireInt(key("embedding_length"))
        feedForwardDimension = try gguf.requireInt(key("feed_forward_length"))
        queryHeads = try gguf.requireInt(key("attention.head_count"))
        kvHeads = try gguf.int(key("attention.head_count_kv")) ?? queryHeads
        contextLength = try gguf.requireInt(key("context_length"))
        headDimension = try gguf.int(key("attention.key_length")) ?? (queryHeads > 0 ? embeddingDimension / queryHeads : 0)
        rmsNormEpsilon = Float(try gguf.double(key("attention.layer_norm_rms_epsilon")) ?? 1e-5)
        ropeBase = Float(try gguf.double(key("rope.freq_base")) ?? 10000)
        ropeDimensions = try gguf.int(key("rope.dimension_count")) ?? headDimension
        ropeHalves = false
        let scaleType = try gguf.string(key("rope.scaling.type")) ?? "none"
        if scaleType == "linear", let f = try gguf.double(key("rope.scaling.factor")), f > 0 {
            ropeFreqScale = Float(1 / f)
        } else {
            ropeFreqScale = 1
        }
        slidingWindow = try gguf.int(key("attention.sliding_window"))
        if let v = try gguf.int(key("vocab_size")) {
            vocabularySize = v
        } else if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue {
            vocabularySize = tokens.count
        } else {
            throw ModelError.invalidConfiguration("no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)")
        }
        try validate()
    }

    func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw ModelError.invalidConfiguration(message()) }
        }
        try check(layerCount > 0 && layerCount <= 1024, "block_count \(layerCount)")
        try check(embeddingDimension > 0 && embeddingDimension <= 1 << 16, "embedding_length \(embeddingDimension)")
        try check(feedForwardDimension > 0 && feedForwardDimension <= 1 << 18, "feed_forward_length \(feedForwardDimension)")
        try check(queryHeads > 0 && kvHeads > 0 && queryHeads % kvHeads == 0,
                  "head_count \(queryHeads) must be a positive multiple of head_count_kv \(kvHeads)")
        try check(headDimension > 0 && headDimension % 8 == 0 && headDimension <= 1024, "head dimension \(headDimension) (must be a positive multiple of 8)")
        try check(ropeDimensions > 0 && ropeDimensions <= headDimension && ropeDimensions % 2 == 0, "rope.dimension_count \(ropeDimensions)")
        try check(contextLength > 0, "context_length \(contextLength)")
        try check(vocabularySize > 0, "vocabulary size \(vocabularySize)")
        try check(rmsNormEpsilon > 0 && rmsNormEpsilon < 1, "rms epsilon \(rmsNormEpsilon)")
        try check(ropeBase > 1, "rope.freq_base \(ropeBase)")
    }

    public var ropeStyle: RoPEStyle { ropeHalves ? .halves : .adjacentPairs }
}
