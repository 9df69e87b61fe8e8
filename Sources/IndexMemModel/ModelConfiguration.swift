// IndexMem — model. Apache-2.0.

import IndexMemCache
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
    case batchTooLarge(rows: Int, limit: Int)
    case emptyBlock

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
        case .batchTooLarge(let r, let l): return "a batch of \(r) token rows exceeds the \(l) rows the forward pass was made for"
        case .emptyBlock: return "a sequence in a batch has no tokens to run"
        }
    }
}

// MARK: - Architecture traits

/// The activation of the gated feed-forward network.
public enum FeedForwardActivation: String, Sendable, Codable, Equatable {
    /// `silu(gate) * up` (llama, mistral, qwen).
    case silu
    /// `gelu(gate) * up`, tanh approximation (gemma).
    case gelu
}

/// What distinguishes one architecture's forward pass from llama's, by `general.architecture`
/// (llama.cpp's `src/models/<arch>.cpp`). The values become fields of `ModelConfiguration`.
struct ArchitectureTraits: Sendable {
    /// RoPE rotates (x[i], x[i + n/2]) (NEOX) instead of adjacent pairs.
    var ropeHalves = false
    /// Q, K and V projections carry biases (`attn_q.bias`, ...), required.
    var requiresQKVBias = false
    /// Queries and keys are RMS-normalised per head before RoPE (`attn_q_norm`, `attn_k_norm`).
    var queryKeyNorm = false
    /// Attention and feed-forward outputs are RMS-normalised before their residual add
    /// (`post_attention_norm`, `post_ffw_norm`).
    var postNorms = false
    var feedForwardActivation = FeedForwardActivation.silu
    /// The token embedding is multiplied by sqrt(embedding dimension).
    var scalesEmbedding = false
    /// Queries are pre-multiplied by 1/sqrt(head dimension) and the scores are not scaled.
    var scalesQueries = false
    /// How `<arch>.attention.sliding_window` applies: nil = ignored (as llama.cpp does for
    /// qwen2/qwen3); 0 = every layer (Mistral in a llama-architecture file); n > 0 = every
    /// layer but each n-th (`il % n == n - 1` is global), unless the file gives
    /// `attention.sliding_window_pattern`.
    var slidingWindowPattern: Int? = nil
    /// Sliding-window layers use their own RoPE base (`rope.freq_base_swa`, default 10000).
    var separateSlidingRope = false

    /// Architectures this engine runs, by `general.architecture`.
    static let registry: [String: ArchitectureTraits] = [
        // Llama 1-3, Mistral (llama architecture files; a sliding window applies when the file sets one).
        "llama": ArchitectureTraits(slidingWindowPattern: 0),
        "qwen2": ArchitectureTraits(ropeHalves: true, requiresQKVBias: true),
        "qwen3": ArchitectureTraits(ropeHalves: true, queryKeyNorm: true),
        "gemma3": ArchitectureTraits(ropeHalves: true, queryKeyNorm: true, postNorms: true, feedForwardActivation: .gelu,
                                     scalesEmbedding: true, scalesQueries: true, slidingWindowPattern: 6, separateSlidingRope: true),
    ]
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
    /// RoPE base of global layers (`rope.freq_base`).
    public var ropeBase: Float
    public var ropeDimensions: Int
    public var ropeHalves: Bool
    /// Linear position scaling of global layers (1 / `rope.scaling.factor` for linear scaling).
    public var ropeFreqScale: Float
    /// The sliding-window size (`attention.sliding_window`) of the layers that slide, if any.
    public var slidingWindow: Int?
    /// Which layers attend through the sliding window (empty when none does).
    public var slidingWindowLayers: [Bool]
    /// RoPE base and linear scale of sliding-window layers, when they differ from the global
    /// layers' (Gemma 3: `rope.freq_base_swa`, default 10000, scale 1).
    public var slidingRopeBase: Float?
    public var slidingRopeFreqScale: Float?
    /// Q, K and V projections carry biases (Qwen 2).
    public var qkvBias: Bool
    /// Per-head RMS norm of queries and keys before RoPE (Qwen 3, Gemma 3).
    public var queryKeyNorm: Bool
    /// RMS norms after attention and after the feed-forward network, before the residual adds (Gemma).
    public var postNorms: Bool
    public var feedForwardActivation: FeedForwardActivation
    /// Multiplier of the token embedding (Gemma: sqrt(embedding), rounded to float).
    public var embeddingScale: Float?
    /// Multiplier of the queries after RoPE (Gemma 3: 1/sqrt(head dimension)); the scores
    /// are then not scaled again.
    public var queryScale: Float?
    /// `tanh` soft-capping of the output logits (`final_logit_softcapping`), if set.
    public var finalLogitSoftcap: Float?

    public var queryDimension: Int { queryHeads * headDimension }
    public var kvDimension: Int { kvHeads * headDimension }
    /// Bytes of one layer's f16 keys and values for one token (the default entry type).
    public var kvBytesPerEntry: Int { kvBytesPerEntry(.f16) }
    /// Bytes of every layer's f16 keys and values for one token (what a full f16 cache costs).
    public var kvBytesPerToken: Int { kvBytesPerToken(.f16) }
    /// Bytes of one layer's keys and values for one token, stored as `type`.
    public func kvBytesPerEntry(_ type: KVEntryType) -> Int { kvHeads * type.bytesPerEntry(headDimension: headDimension) }
    /// Bytes of every layer's keys and values for one token, stored as `type` (what a full cache costs).
    public func kvBytesPerToken(_ type: KVEntryType) -> Int { layerCount * kvBytesPerEntry(type) }

    /// Architectures this engine runs.
    public static var supportedArchitectures: [String] { ArchitectureTraits.registry.keys.sorted() }

    /// Reads and validates the configuration of a GGUF model.
    public init(gguf: GGUFFile) throws {
        guard let arch = try gguf.string("general.architecture") else { throw ModelError.missingArchitecture }
        guard let traits = ArchitectureTraits.registry[arch] else {
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
        if let valueLength = try gguf.int(key("attention.value_length")), valueLength != headDimension {
            throw ModelError.invalidConfiguration("attention.value_length \(valueLength) differs from key_length \(headDimension)")
        }
        rmsNormEpsilon = Float(try gguf.double(key("attention.layer_norm_rms_epsilon")) ?? 1e-5)
        ropeBase = Float(try gguf.double(key("rope.freq_base")) ?? 10000)
        ropeDimensions = try gguf.int(key("rope.dimension_count")) ?? headDimension
        ropeHalves = traits.ropeHalves
        let scaleType = try gguf.string(key("rope.scaling.type")) ?? "none"
        if scaleType == "linear", let f = try gguf.double(key("rope.scaling.factor")), f > 0 {
            ropeFreqScale = Float(1 / f)
        } else {
            ropeFreqScale = 1
        }
        if !["none", "linear"].contains(scaleType) {
            throw ModelError.invalidConfiguration("rope.scaling.type '\(scaleType)' is not supported (none, linear; Llama 3 scaling comes from rope_freqs.weight)")
        }
        // Sliding windows, per layer.
        let window = try gguf.int(key("attention.sliding_window")).flatMap { $0 > 0 ? $0 : nil }
        slidingWindow = nil
        slidingWindowLayers = []
        if let pattern = traits.slidingWindowPattern, let window {
            var layers: [Bool]
            if let explicit = gguf.metadata[key("attention.sliding_window_pattern")]?.arrayValue {
                layers = explicit.map { $0.boolValue ?? ($0.intValue.map { $0 != 0 } ?? false) }
                if layers.count != layerCount {
                    throw ModelError.invalidConfiguration("attention.sliding_window_pattern has \(layers.count) entries for \(layerCount) layers")
                }
            } else {
                let n = try gguf.int(key("attention.sliding_window_pattern")) ?? pattern
                layers = (0..<layerCount).map { n == 0 || $0 % n < n - 1 }
            }
            if layers.contains(true) {
                slidingWindow = window
                slidingWindowLayers = layers
            }
        }
        if traits.separateSlidingRope && slidingWindow != nil {
            slidingRopeBase = Float(try gguf.double(key("rope.freq_base_swa")) ?? 10000)
            slidingRopeFreqScale = 1
        } else {
            slidingRopeBase = nil
            slidingRopeFreqScale = nil
        }
        qkvBias = traits.requiresQKVBias
        queryKeyNorm = traits.queryKeyNorm
        postNorms = traits.postNorms
        feedForwardActivation = traits.feedForwardActivation
        embeddingScale = traits.scalesEmbedding ? Float(embeddingDimension).squareRoot() : nil
        if traits.scalesQueries {
            // llama.cpp's gemma3: Gemma 3 27B (62 layers) scales by 1/sqrt(embedding / heads).
            let d = layerCount == 62 && queryHeads > 0 ? embeddingDimension / queryHeads : headDimension
            queryScale = 1 / Float(d).squareRoot()
        } else {
            queryScale = nil
        }
        finalLogitSoftcap = try gguf.double(key("final_logit_softcapping")).flatMap { $0 > 0 ? Float($0) : nil }
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
        // Finite too: an infinite base makes every rotation angle 0 or nan, silently.
        try check(ropeBase > 1 && ropeBase.isFinite, "rope.freq_base \(ropeBase)")
        try check(slidingRopeBase.map { $0 > 1 && $0.isFinite } ?? true, "rope.freq_base_swa \(slidingRopeBase ?? 0)")
        try check(slidingWindowLayers.isEmpty || slidingWindowLayers.count == layerCount, "sliding-window layer list")
    }

    public var ropeStyle: RoPEStyle { ropeHalves ? .halves : .adjacentPairs }

    /// The sliding window of `layer`, or nil for a global (full-attention) layer.
    public func slidingWindow(layer: Int) -> Int? {
        guard let slidingWindow, layer < slidingWindowLayers.count, slidingWindowLayers[layer] else { return nil }
        return slidingWindow
    }

    /// Layers that attend through a sliding window.
    public var slidingLayerCount: Int { slidingWindowLayers.filter { $0 }.count }

    /// The global (full-attention) layers, in order: the layers a KV budget, its policy and a
    /// learned indexer apply to (a sliding-window layer keeps its window whatever the policy).
    public var globalLayers: [Int] { (0..<layerCount).filter { slidingWindow(layer: $0) == nil } }

    /// The multiplier of `q . k` before the softmax (1 when the queries were pre-scaled).
    public var attentionScale: Float { queryScale == nil ? 1 / Float(headDimension).squareRoot() : 1 }
}
