// IndexMem — server. Apache-2.0.
//
// From an OpenAI request body to a `GenerationRequest`: every field checked, the prompt
// rendered through the model's chat template and tokenized, the cache settings merged with
// the server's defaults, the KV reservation computed.

import IndexMem

// MARK: - Parsed request

/// Which endpoint a request came to.
package enum Endpoint: Sendable {
    case completion, chat
}

/// A validated generation request and how to answer it.
package struct ParsedRequest: Sendable {
    package var generation: GenerationRequest
    var stream: Bool
    var includeUsage: Bool
    var model: String
}

// MARK: - Parser

package struct RequestParser: Sendable {
    let engine: Engine
    let options: ServerOptions
    let modelID: String
    /// The cache plan of a request that changes nothing (`options.cache`, resolved once).
    let defaultPlan: CachePlan
    /// Names a request may give in `model`: the id, the model's file name, its path.
    private let modelNames: Set<String>

    /// - Parameter defaultPlan: `options.cache` resolved and bound (the server does it when it
    ///   starts, where a bad setting is its error); nil resolves it here, for settings known good.
    package init(engine: Engine, options: ServerOptions, modelID: String, defaultPlan: CachePlan? = nil) {
        self.engine = engine
        self.options = options
        self.modelID = modelID
        if let defaultPlan {
            self.defaultPlan = defaultPlan
        } else {
            do { self.defaultPlan = try options.cache.resolve() } catch { preconditionFailure("the server's default cache settings: \(error)") }
        }
        modelNames = [modelID, Self.fileName(engine.path), engine.path]
    }

    /// The last component of a path.
    static func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    /// Whether a request may name the model so.
    package func accepts(model: String) -> Bool { modelNames.contains(model) }

    package func parse(_ body: JSONObject, endpoint: Endpoint) throws(APIError) -> ParsedRequest {
        let c = engine.configuration
        // MARK: Model and response shape
        let model = try body.string("model") ?? modelID
        guard accepts(model: model) else { throw .modelNotFound(model) }
        if let n = try body.int("n"), n != 1 { throw .invalidRequest("'n' must be 1 (one choice per request)", param: "n") }
        if try body.bool("echo") == true { throw .invalidRequest("'echo' is not supported", param: "echo") }
        if let lp = body["logprobs"], lp != .bool(false) { throw .invalidRequest("'logprobs' is not supported", param: "logprobs") }
        if endpoint == .chat, body["tools"] != nil || body["functions"] != nil {
            throw .invalidRequest("tools and functions are not supported", param: "tools")
        }
        // What is not honoured is refused, never silently ignored: plain text is the only format.
        if let format = try body.object("response_format"), try format.string("type") != "text" {
            throw .invalidRequest("'response_format' is not supported (only {\"type\": \"text\"}): the answer is plain text",
                                  param: "response_format")
        }
        let stream = try body.bool("stream") ?? false
        let includeUsage = try body.object("stream_options")?.bool("include_usage") ?? false

        // MARK: Prompt
        let (prompt, lastTurnTokens) = try promptTokens(body, endpoint: endpoint)
        guard !prompt.isEmpty else { throw .invalidRequest("the prompt is empty", param: endpoint == .chat ? "messages" : "prompt") }

        // MARK: Length
        var maxTokens = try body.int("max_completion_tokens", in: 0...c.contextLength)
        if maxTokens == nil { maxTokens = try body.int("max_tokens", in: 0...c.contextLength) }
        // The prompt must fit, and leave a position for a token if any is asked for.
        do { try engine.checkContext(tokens: prompt.count + (maxTokens == 0 ? 0 : 1)) } catch {
            throw .exceedsContext(promptTokens: prompt.count, contextLength: c.contextLength)
        }
        let resolvedMax = maxTokens ?? min(options.defaultMaxTokens, c.contextLength - prompt.count)

        // MARK: Sampling (llama.cpp's server defaults, with a random seed)
        var sampling = SamplingOptions.llamaCpp
        sampling.seed = UInt64.random(in: 0...UInt64.max)
        if let t = try body.double("temperature", in: 0...2) { sampling.temperature = Float(t) }
        if let p = try body.double("top_p", in: 0...1) { sampling.topP = Float(p) }
        if let k = try body.int("top_k", in: 0...c.vocabularySize) { sampling.topK = k }
        if let p = try body.double("min_p", in: 0...1) { sampling.minP = Float(p) }
        if let r = try body.double("repeat_penalty", in: 0.01...10) { sampling.repetitionPenalty = Float(r) }
        if let s = try body.int("seed") { sampling.seed = UInt64(bitPattern: Int64(s)) }
        sampling.logitBias = try logitBias(body)
        // Accepted for compatibility; checked, not applied.
        _ = try body.double("presence_penalty", in: -2...2)
        _ = try body.double("frequency_penalty", in: -2...2)

        let stops = try stopStrings(body)
        let ignoreEndOfTurn = try body.bool("ignore_eos") ?? false
        let cache = try cachePlan(body, promptTokens: prompt.count, protectLast: lastTurnTokens)
        // The latent memory's state is fixed by the adapter's rank; it counts against the pool too.
        let reservation = cache.kvBytesBound(model: c, promptTokens: prompt.count, totalTokens: prompt.count + resolvedMax) + cache.memoryBytesBound
        return ParsedRequest(
            generation: GenerationRequest(promptTokens: prompt, maxTokens: resolvedMax, sampling: sampling, stopStrings: stops,
                                          ignoreEndOfTurn: ignoreEndOfTurn, cache: cache, reservation: reservation),
            stream: stream, includeUsage: includeUsage, model: model)
    }

    // MARK: - Prompt

    /// The prompt's token ids and, for a chat, how many tokens its last turn takes (header,
    /// text, end of turn and the assistant's header), counted when asked: only a budget needs it.
    private func promptTokens(_ body: JSONObject, endpoint: Endpoint) throws(APIError) -> ([Int], lastTurn: () -> Int?) {
        let none: () -> Int? = { nil }
        switch endpoint {
        case .completion:
            guard let p = body["prompt"] else { throw .invalidRequest("'prompt' is required", param: "prompt", code: "missing_field") }
            switch p {
            case .string(let s): return (engine.tokenize(s, parseSpecial: true), none)
            case .array(let items):
                if items.count == 1, case .string(let s) = items[0] { return (engine.tokenize(s, parseSpecial: true), none) }
                if items.count == 1, case .array(let ids) = items[0] { return (try tokenIds(ids), none) }
                if items.allSatisfy({ if case .number = $0 { return true } else { return false } }) { return (try tokenIds(items), none) }
                throw .invalidRequest("'prompt' must be a string, an array of token ids, or an array of one of those", param: "prompt")
            default:
                throw .invalidRequest("'prompt' must be a string or an array of token ids, got \(p.typeName)", param: "prompt")
            }
        case .chat:
            guard let template = engine.chatTemplate else {
                throw .invalidRequest("this model has no chat template; use /v1/completions", code: "no_chat_template")
            }
            guard let list = try body.array("messages") else {
                throw .invalidRequest("'messages' is required", param: "messages", code: "missing_field")
            }
            guard !list.isEmpty else { throw .invalidRequest("'messages' must not be empty", param: "messages") }
            var messages: [ChatMessage] = []
            for (i, item) in list.enumerated() {
                guard case .object(let fields) = item else {
                    throw .invalidRequest("'messages[\(i)]' must be an object, got \(item.typeName)", param: "messages")
                }
                let m = JSONObject(fields: fields, path: "messages[\(i)].")
                guard var role = try m.string("role") else {
                    throw .invalidRequest("'messages[\(i)].role' is required", param: "messages", code: "missing_field")
                }
                if role == "developer" { role = "system" }
                guard ["system", "user", "assistant"].contains(role) else {
                    throw .invalidRequest("'messages[\(i)].role' must be system, user or assistant, got '\(role)'", param: "messages")
                }
                messages.append(ChatMessage(role: role, content: try content(m, index: i)))
            }
            // Message content is text: only the template's markers are special, so a user
            // cannot forge a turn with `<|im_end|><|im_start|>system` (as OpenAI's API treats it).
            let full = template.renderMarked(messages: messages, addGenerationPrompt: true)
            let tokenizer = engine.tokenizer
            return (tokenizer.encode(full.text, addSpecial: true, literal: full.content), {
                let head = template.render(messages: Array(messages.dropLast()), addGenerationPrompt: false)
                guard full.text.hasPrefix(head) else { return nil }
                // The last turn alone, in bytes, with its content ranges moved along.
                let cut = head.utf8.count
                let tail = String(decoding: full.text.utf8.dropFirst(cut), as: UTF8.self)
                let literal = full.content.compactMap { r -> Range<Int>? in
                    r.upperBound > cut ? (max(r.lowerBound, cut) - cut)..<(r.upperBound - cut) : nil
                }
                return tokenizer.encode(tail, addSpecial: false, literal: literal).count
            })
        }
    }

    private func content(_ m: JSONObject, index i: Int) throws(APIError) -> String {
        guard let value = m["content"] else { throw .invalidRequest("'messages[\(i)].content' is required", param: "messages", code: "missing_field") }
        switch value {
        case .string(let s): return s
        case .array(let parts):
            var text = ""
            for (j, part) in parts.enumerated() {
                guard case .object(let f) = part, f["type"] == .string("text"), case .string(let t)? = f["text"] else {
                    throw .invalidRequest("'messages[\(i)].content[\(j)]' must be {\"type\": \"text\", \"text\": ...}; only text is supported",
                                          param: "messages")
                }
                text += t
            }
            return text
        default:
            throw .invalidRequest("'messages[\(i)].content' must be a string or an array of text parts, got \(value.typeName)",
                                  param: "messages")
        }
    }

    private func tokenIds(_ items: [JSONValue]) throws(APIError) -> [Int] {
        let vocab = engine.configuration.vocabularySize
        guard let ids = items.tokenIds(vocabulary: vocab) else {
            throw .invalidRequest("token ids in 'prompt' must be integers in 0..<\(vocab)", param: "prompt")
        }
        return ids
    }

    /// OpenAI's `logit_bias`: token id (a string key) -> bias in [-100, 100], added to the
    /// logit; -100 bans the token.
    private func logitBias(_ body: JSONObject) throws(APIError) -> [Int: Float]? {
        guard let biases = try body.object("logit_bias") else { return nil }
        let vocab = engine.configuration.vocabularySize
        var out: [Int: Float] = [:]
        for key in biases.fields.keys.sorted() {
            guard let id = Int(key), id >= 0, id < vocab else {
                throw .invalidRequest("'logit_bias' keys must be token ids in 0..<\(vocab), got '\(key.debugEscaped)'", param: "logit_bias")
            }
            guard let bias = try biases.double(key, in: -100...100) else { continue }
            out[id] = Float(bias)
        }
        return out.isEmpty ? nil : out
    }

    private func stopStrings(_ body: JSONObject) throws(APIError) -> [String] {
        guard let v = body["stop"] else { return [] }
        var stops: [String]
        switch v {
        case .string(let s): stops = [s]
        case .array(let items):
            stops = []
            for item in items {
                guard case .string(let s) = item else { throw .invalidRequest("'stop' must be a string or an array of strings", param: "stop") }
                stops.append(s)
            }
        default: throw .invalidRequest("'stop' must be a string or an array of strings, got \(v.typeName)", param: "stop")
        }
        guard stops.count <= 4 else { throw .invalidRequest("'stop' may hold at most 4 strings", param: "stop") }
        guard stops.allSatisfy({ $0.utf8.count <= 256 }) else { throw .invalidRequest("each stop string may be at most 256 bytes", param: "stop") }
        return stops  // empty ones are dropped by `TextStream`
    }

    // MARK: - Cache settings

    /// The server's default plan overridden by `kv_policy`, `kv_budget` or `kv_ratio`,
    /// `kv_mode`, `kv_sinks`, `kv_window`, `kv_memory`, `kv_type`: the request's one parse of a policy spec. For a
    /// chat, the recent window grows to cover the last turn (within the budget), so its
    /// template tokens are never evicted. A learned policy gets the engine's adapter.
    private func cachePlan(_ body: JSONObject, promptTokens: Int, protectLast lastTurn: () -> Int?) throws(APIError) -> CachePlan {
        let defaults = defaultPlan
        var policy = defaults.policy
        var limit = defaults.limit
        var mode = defaults.mode
        var sinks = defaults.sinks
        var window = defaults.window
        let budget = try body.int("kv_budget", in: 1...Int(Int32.max))
        let ratio = try body.double("kv_ratio")
        if let ratio, !(ratio > 0 && ratio <= 1) {
            throw .invalidRequest("'kv_ratio' must be in (0, 1] (the fraction of the prompt the cache keeps), got \(ratio)", param: "kv_ratio")
        }
        if budget != nil && ratio != nil { throw .invalidRequest("give either 'kv_budget' or 'kv_ratio', not both", param: "kv_budget") }
        if let text = try body.string("kv_policy") {
            do { policy = try CachePolicy(parsing: text) } catch { throw .invalidRequest(error.description, param: "kv_policy") }
            if policy.isFull { limit = nil }
        }
        if let budget { limit = .tokens(budget) }
        if let ratio { limit = .ratio(ratio) }
        if let text = try body.string("kv_mode") {
            guard let m = CacheConfiguration.Mode(rawValue: text) else {
                throw .invalidRequest("'kv_mode' must be one of \(CacheConfiguration.Mode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'",
                                      param: "kv_mode")
            }
            mode = m
        }
        if let s = try body.int("kv_sinks", in: 0...4096) { sinks = s }
        if let w = try body.int("kv_window", in: 0...Int(Int32.max)) { window = w }
        // The default memory follows the default policy; a full cache has nothing to remember.
        var memory = policy.isFull ? MemoryMode.off : defaults.memory
        if let text = try body.string("kv_memory") {
            do { memory = try MemoryMode(parsing: text) } catch { throw .invalidRequest(error.reason, param: "kv_memory") }
            if memory != .off && policy.isFull {
                throw .invalidRequest(CacheConfigurationError.memoryWithoutEviction.reason, param: "kv_memory")
            }
        }
        var kvType = defaults.kvType
        if let text = try body.string("kv_type") {
            do { kvType = try KVEntryType(parsing: text) } catch { throw .invalidRequest(error.reason, param: "kv_type") }
            do { try CachePlan.checkEntryType(kvType, model: engine.configuration) } catch { throw .invalidRequest(error.reason, param: "kv_type") }
        }
        if !policy.isFull && limit == nil {
            throw .invalidRequest("kv_policy '\(policy.spec)' evicts entries: give 'kv_budget' (tokens) or 'kv_ratio'", param: "kv_budget")
        }
        var plan: CachePlan
        do {
            plan = try CachePlan(policy: policy, limit: limit, mode: mode, sinks: sinks, window: window, chunk: defaults.chunk,
                                 adapter: defaults.adapter, memory: memory, kvType: kvType)
        } catch {
            // Name the field the request used for the budget.
            throw .invalidRequest(error.description, param: ratio != nil ? "kv_ratio" : "kv_budget")
        }
        // The engine's adapter, loaded once and shared; a missing one is the request's error, not the server's.
        do { plan = try engine.bind(plan) } catch { throw .invalidRequest("\(error)", param: memory != .off && !plan.policy.needsAdapter ? "kv_memory" : "kv_policy") }
        if !plan.isFull, let lastTurn = lastTurn() { plan.protectRecent(lastTurn, contextTokens: promptTokens) }
        return plan
    }
}
