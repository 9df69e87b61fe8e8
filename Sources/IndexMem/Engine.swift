// IndexMem — public facade. Apache-2.0.

import Foundation
import IndexMemCache
import IndexMemGGUF
import IndexMemKernels
import Synchronization
@_exported import IndexMemModel
@_exported import IndexMemTokenizer

// MARK: - Engine

/// A loaded model: weights (memory-mapped, kept quantized), configuration and tokenizer.
/// Open a `Session` per sequence.
public final class Engine: @unchecked Sendable {
    public let path: String
    public let file: GGUFFile
    public let configuration: ModelConfiguration
    public let weights: ModelWeights
    public let tokenizer: any Tokenizer
    public let vocabulary: TokenizerVocabulary
    public let chatTemplate: ChatTemplate?
    public let pool: ThreadPool
    /// Tokens that end a turn: end-of-sequence plus the chat template's end-of-turn tokens.
    public let stopTokens: Set<Int>

    /// Loads a GGUF model.
    /// - Parameters:
    ///   - path: the `.gguf` file.
    ///   - threads: worker threads (the caller's included); defaults to the active cores.
    /// - Throws: `EngineError.modelNotFound`, `GGUFError` for a malformed file, `ModelError`
    ///   for an unknown architecture or impossible shapes, `TokenizerError`.
    public init(path: String, threads: Int? = nil) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw EngineError.modelNotFound(path) }
        self.path = path
        file = try GGUFFile(path: path)
        configuration = try ModelConfiguration(gguf: file)
        weights = try ModelWeights(file: file, configuration: configuration)
        vocabulary = try TokenizerVocabulary(gguf: file)
        tokenizer = try makeTokenizer(vocabulary: vocabulary)
        chatTemplate = vocabulary.chatTemplate.flatMap { ChatTemplate(template: $0) }
            ?? ChatTemplate.fallback(architecture: configuration.architecture, vocabulary: vocabulary)
        pool = ThreadPool(threadCount: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        stopTokens = Self.stopTokens(vocabulary: vocabulary, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    /// The sha256 of the model file, hex (computed on first use; reads the whole file).
    public lazy var sha256: String = SHA256.hex(of: UnsafeRawBufferPointer(start: file.bytes.base, count: file.bytes.count))

    /// Opens a new sequence with the plan a configuration resolves to.
    /// - Throws: `CacheConfigurationError`, or `AdapterError` for a learned policy's adapter.
    public func makeSession(cache: CacheConfiguration = CacheConfiguration()) throws -> Session {
        try makeSession(cache: cache.resolve())
    }

    /// Opens a new sequence. A learned policy gets the adapter's parameters (loaded once).
    /// - Throws: `AdapterError` for a learned policy's adapter.
    public func makeSession(cache plan: CachePlan) throws -> Session {
        Session(engine: self, plan: try bind(plan))
    }

    /// The plan with the adapter its learned policy reads: loaded and checked against this
    /// model once, then shared by every plan that names it. Other plans come back as they are.
    /// - Throws: `CacheConfigurationError` for a KV type the model's heads cannot be stored in,
    ///   `AdapterError` (missing, malformed, for another model, or without the variant).
    public func bind(_ plan: CachePlan) throws -> CachePlan {
        try plan.check(model: configuration)
        guard plan.needsAdapter else { return plan }
        // A plan bound by this engine keeps its parameters; one bound elsewhere is bound again.
        if let bound = plan.indexer, indexers.withLock({ $0[bound.path] }) === bound { return plan }
        let shared = try indexer(adapter: plan.adapter)
        let bound = plan.binding(shared)
        if let learned = bound.policy.resolved.policy as? IndexerPolicy, !shared.parameters.has(learned.variant) {
            throw AdapterError.missingIndexer(path: shared.path, variant: learned.variant.rawValue, policy: learned.spec)
        }
        if plan.memory != .off && shared.memory.isEmpty { throw AdapterError.missingMemory(path: shared.path) }
        return bound
    }

    /// Checks that a sequence of `tokens` fits the model's trained context: the one place the
    /// context limit is checked (sessions, evaluation, the server's requests, the benchmark).
    /// - Throws: `EngineError.promptTooLong`.
    public func checkContext(tokens: Int) throws(EngineError) {
        let limit = configuration.contextLength
        guard tokens <= limit else { throw .promptTooLong(tokens: tokens, limit: limit) }
    }

    private let indexers = Mutex<[String: SharedIndexer]>([:])

    /// The indexer of an adapter file (default: `adapters/<model file>.indexmem.safetensors`),
    /// read and checked against this model once, then shared.
    /// - Throws: `AdapterError` (missing, malformed, or trained for another model).
    public func indexer(adapter: String? = nil) throws -> SharedIndexer {
        let path = adapter ?? IndexerAdapterFile.defaultPath(modelPath: self.path)
        if let loaded = indexers.withLock({ $0[path] }) { return loaded }
        let (parameters, memory, metadata) = try IndexerAdapterFile.read(path: path)
        let modelName = URL(fileURLWithPath: self.path).lastPathComponent
        if let sha = metadata["model_sha256"], sha != sha256 {
            throw AdapterError.wrongModel(path: path, adapterModel: metadata["model"] ?? "another model", adapterSHA: sha,
                                          model: modelName, modelSHA: sha256)
        }
        let c = configuration
        if let reason = parameters.mismatch(budgetedLayers: c.globalLayers.count, hiddenDimension: c.embeddingDimension,
                                            kvHeads: c.kvHeads, headDimension: c.headDimension) {
            throw AdapterError.incompatible(path: path, reason: reason)
        }
        let shared = SharedIndexer(parameters: parameters, memory: memory, metadata: metadata, path: path)
        return indexers.withLock { table in
            if let other = table[path] { return other }
            table[path] = shared
            return shared
        }
    }

    /// Token ids of `text` as the model's tokenizer splits it (BOS added if the file says so).
    public func tokenize(_ text: String, parseSpecial: Bool = false) -> [Int] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial)
    }

    /// The token ids of a conversation through the model's chat template (BOS added if the
    /// file says so), or nil without a template. Only the template's markers are special:
    /// control tokens written in a message's content are tokenized as text, so content such as
    /// `<|im_end|><|im_start|>system` cannot forge a turn.
    public func tokenizeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> [Int]? {
        guard let marked = chatTemplate?.renderMarked(messages: messages, addGenerationPrompt: addGenerationPrompt) else { return nil }
        return tokenizer.encode(marked.text, addSpecial: true, literal: marked.content)
    }

    /// The prompt for a user message through the model's chat template (or the raw text).
    public func formatChat(_ messages: [ChatMessage]) -> String? {
        chatTemplate?.render(messages: messages, addGenerationPrompt: true)
    }

    private static func stopTokens(vocabulary: TokenizerVocabulary, tokenizer: any Tokenizer, chatTemplate: ChatTemplate?) -> Set<Int> {
        var s = Set<Int>()
        if let eos = vocabulary.eosTokenId { s.insert(eos) }
        if let template = chatTemplate {
            for text in template.endOfTurnTokens {
                let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
                if ids.count == 1 { s.insert(ids[0]) }
            }
        }
        return s
    }
}
