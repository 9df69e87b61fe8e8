// IndexMem — tokenizer. Apache-2.0.
//
// The tokenizer stands alone (it imports nothing of ours), so it can be fuzzed without any
// math; IndexMemModel fills a `TokenizerVocabulary` from a GGUF file's `tokenizer.*` keys.

// MARK: - Errors

/// A vocabulary that cannot be used, with a message naming the problem.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `tokenizer.ggml.model` names a tokenizer this engine does not implement.
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    case unsupportedPreTokenizer(String)
    /// The vocabulary's arrays disagree or are empty.
    case inconsistentVocabulary(String)
    /// A merge rule is not two space-separated tokens.
    case malformedMerge(index: Int, text: String)

    public var description: String {
        switch self {
        case .unsupportedModel(let m):
            return "tokenizer model '\(m)' (tokenizer.ggml.model) is not supported; supported: \(TokenizerVocabulary.supportedModels.joined(separator: ", "))"
        case .unsupportedPreTokenizer(let p):
            return "pre-tokenizer '\(p)' (tokenizer.ggml.pre) is not supported; supported: \(PreTokenizer.supportedNames.sorted().joined(separator: ", "))"
        case .inconsistentVocabulary(let m): return "inconsistent vocabulary: \(m)"
        case .malformedMerge(let i, let t): return "merge rule \(i) '\(t)' is not two tokens separated by one space"
        }
    }
}

// MARK: - Token types

/// The kind of a vocabulary entry (GGUF `tokenizer.ggml.token_type`, llama.cpp's
/// `llama_token_type` numbers).
public enum TokenType: Int32, Sendable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    /// Special tokens such as end-of-turn markers: matched in text only when asked to.
    case control = 3
    /// Added tokens: always matched in text before ordinary tokenization.
    case userDefined = 4
    case unused = 5
    /// SentencePiece byte-fallback tokens `<0xNN>`.
    case byte = 6
}

// MARK: - Vocabulary

/// Everything a tokenizer needs, as plain values.
public struct TokenizerVocabulary: Sendable {
    /// Tokenizer family: `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    public var model: String
    /// Pre-tokenizer name (`tokenizer.ggml.pre`), for byte-level BPE.
    public var preTokenizer: String
    /// Token texts, indexed by id.
    public var tokens: [String]
    /// Token types, indexed by id (all `.normal` when the file has none).
    public var tokenTypes: [TokenType]
    /// SentencePiece scores, indexed by id (empty for BPE).
    public var scores: [Float]
    /// BPE merge rules in priority order, each `"left right"`.
    public var merges: [String]
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    /// End-of-turn token, if the file names one (`tokenizer.ggml.eot_token_id`).
    public var eotTokenId: Int?
    public var unknownTokenId: Int?
    public var paddingTokenId: Int?
    /// Whether encoding with `addSpecial` starts with BOS.
    public var addBos: Bool
    /// Whether encoding with `addSpecial` ends with EOS.
    public var addEos: Bool
    /// SentencePiece: prefix the text with a space (`tokenizer.ggml.add_space_prefix`).
    public var addSpacePrefix: Bool
    /// The Jinja chat template, if the file has one.
    public var chatTemplate: String?

    public static let supportedModels = ["gpt2", "llama"]

    public init(model: String, preTokenizer: String = "default", tokens: [String], tokenTypes: [TokenType]? = nil,
                scores: [Float] = [], merges: [String] = [], bosTokenId: Int? = nil, eosTokenId: Int? = nil,
                eotTokenId: Int? = nil, unknownTokenId: Int? = nil, paddingTokenId: Int? = nil,
                addBos: Bool = false, addEos: Bool = false, addSpacePrefix: Bool = false, chatTemplate: String? = nil) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.tokenTypes = tokenTypes ?? Array(repeating: .normal, count: tokens.count)
        self.scores = scores
        self.merges = merges
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.eotTokenId = eotTokenId
        self.unknownTokenId = unknownTokenId
        self.paddingTokenId = paddingTokenId
        self.addBos = addBos
        self.addEos = addEos
        self.addSpacePrefix = addSpacePrefix
        self.chatTemplate = chatTemplate
    }

    /// Checks the arrays agree and the special ids are in range.
    public func validate() throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .inconsistentVocabulary("no tokens") }
        guard tokenTypes.count == tokens.count else {
            throw .inconsistentVocabulary("\(tokens.count) tokens but \(tokenTypes.count) token types")
        }
        guard scores.isEmpty || scores.count == tokens.count else {
            throw .inconsistentVocabulary("\(tokens.count) tokens but \(scores.count) scores")
        }
        for (name, id) in [("bos", bosTokenId), ("eos", eosTokenId), ("eot", eotTokenId), ("unknown", unknownTokenId), ("padding", paddingTokenId)] {
            if let id, id < 0 || id >= tokens.count {
                throw .inconsistentVocabulary("\(name) token id \(id) is outside the vocabulary of \(tokens.count)")
            }
        }
    }
}
