// IndexMem — model. Apache-2.0.

import IndexMemGGUF
import IndexMemTokenizer

// MARK: - Vocabulary from GGUF metadata

extension TokenizerVocabulary {
    /// Reads the `tokenizer.*` keys of a GGUF file.
    /// - Throws: `GGUFError` for missing or mistyped keys, `TokenizerError` for arrays that disagree.
    public init(gguf: GGUFFile) throws {
        guard let model = try gguf.string("tokenizer.ggml.model") else { throw GGUFError.missingKey("tokenizer.ggml.model") }
        guard let tokens = try gguf.stringArray("tokenizer.ggml.tokens") else { throw GGUFError.missingKey("tokenizer.ggml.tokens") }
        var types: [TokenType]? = nil
        if let raw = try gguf.intArray("tokenizer.ggml.token_type") {
            types = raw.map { TokenType(rawValue: Int32(clamping: $0)) ?? .undefined }
        }
        let scores = try gguf.doubleArray("tokenizer.ggml.scores")?.map(Float.init) ?? []
        let merges = try gguf.stringArray("tokenizer.ggml.merges") ?? []
        self.init(
            model: model,
            preTokenizer: try gguf.string("tokenizer.ggml.pre") ?? "default",
            tokens: tokens, tokenTypes: types, scores: scores, merges: merges,
            bosTokenId: try gguf.int("tokenizer.ggml.bos_token_id"),
            eosTokenId: try gguf.int("tokenizer.ggml.eos_token_id"),
            eotTokenId: try gguf.int("tokenizer.ggml.eot_token_id"),
            unknownTokenId: try gguf.int("tokenizer.ggml.unknown_token_id"),
            paddingTokenId: try gguf.int("tokenizer.ggml.padding_token_id"),
            // llama.cpp's defaults when the key is absent: BOS for SentencePiece, not for BPE.
            addBos: try gguf.bool("tokenizer.ggml.add_bos_token") ?? (model == "llama"),
            addEos: try gguf.bool("tokenizer.ggml.add_eos_token") ?? false,
            addSpacePrefix: try gguf.bool("tokenizer.ggml.add_space_prefix") ?? (model == "llama"),
            chatTemplate: try gguf.string("tokenizer.chat_template"))
        try validate()
    }
}
