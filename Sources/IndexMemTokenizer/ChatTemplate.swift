// IndexMem — tokenizer. Apache-2.0.
//
// Chat templates are Jinja programs in the GGUF (`tokenizer.chat_template`). Like
// llama.cpp's `llm_chat_detect_template`, we recognise the well-known families by their
// markers and render them with code written for each, instead of running Jinja.

// MARK: - Messages

/// One turn of a conversation.
public struct ChatMessage: Sendable, Codable, Equatable {
    /// `system`, `user` or `assistant`.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

// MARK: - Templates

/// A recognised chat template.
public struct ChatTemplate: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen).
        case chatml
        /// `<start_of_turn>user\n…<end_of_turn>\n` with the system text folded into the first
        /// user turn and the assistant called `model` (Gemma 2 and 3).
        case gemma
        /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3).
        case llama3
        /// `[INST] … [/INST]` (Mistral).
        case mistral
    }

    public let kind: Kind
    /// The system message the template inserts when the conversation has none (SmolLM2's
    /// template does), or nil.
    public let defaultSystemMessage: String?

    /// Recognises a Jinja template; nil if it is of no known family.
    public init?(template: String) {
        if template.contains("<|im_start|>") {
            kind = .chatml
            defaultSystemMessage = Self.chatmlDefaultSystem(template)
        } else if template.contains("<start_of_turn>") {
            kind = .gemma
            defaultSystemMessage = nil
        } else if template.contains("<|start_header_id|>") && template.contains("<|end_header_id|>") {
            kind = .llama3
            defaultSystemMessage = nil
        } else if template.contains("[INST]") {
            kind = .mistral
            defaultSystemMessage = nil
        } else {
            return nil
        }
    }

    /// The template for a model whose file has none (`tokenizer.chat_template` missing), by
    /// architecture, when its vocabulary has the template's markers: Gemma GGUFs converted
    /// without a template still use `<start_of_turn>`.
    public static func fallback(architecture: String, vocabulary: TokenizerVocabulary) -> ChatTemplate? {
        if architecture.hasPrefix("gemma") && vocabulary.tokens.contains("<start_of_turn>") && vocabulary.tokens.contains("<end_of_turn>") {
            return ChatTemplate(kind: .gemma)
        }
        return nil
    }

    public init(kind: Kind, defaultSystemMessage: String? = nil) {
        self.kind = kind
        self.defaultSystemMessage = defaultSystemMessage
    }

    /// Texts that end a turn (stop generation), as special tokens of the vocabulary.
    public var endOfTurnTokens: [String] {
        switch kind {
        case .chatml: return ["<|im_end|>"]
        case .gemma: return ["<end_of_turn>"]
        case .llama3: return ["<|eot_id|>"]
        case .mistral: return ["</s>"]
        }
    }

    /// The prompt text for `messages`; with `addGenerationPrompt`, ends where the assistant's
    /// answer begins. BOS is not included (the tokenizer adds it when the vocabulary says so).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        renderMarked(messages: messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The prompt text and the UTF-8 byte ranges in it that are message content (sorted):
    /// tokenize with `Tokenizer.encode(_:addSpecial:literal:)` so that only the template's own
    /// markers are special and a message cannot forge a turn.
    public func renderMarked(messages: [ChatMessage], addGenerationPrompt: Bool) -> (text: String, content: [Range<Int>]) {
        var out = MarkedText()
        switch kind {
        case .chatml:
            if let system = defaultSystemMessage, messages.first?.role != "system" {
                out.template("<|im_start|>system\n\(system)<|im_end|>\n")  // the model file's own text
            }
            for m in messages {
                out.template("<|im_start|>\(m.role)\n")
                out.content(m.content)
                out.template("<|im_end|>\n")
            }
            if addGenerationPrompt { out.template("<|im_start|>assistant\n") }
        case .gemma:
            var pendingSystem: String? = nil
            for m in messages {
                if m.role == "system" { pendingSystem = m.content; continue }
                let role = m.role == "assistant" ? "model" : m.role
                var content = m.content.trimmingWhitespace()
                if let s = pendingSystem { content = s + "\n\n" + content; pendingSystem = nil }
                out.template("<start_of_turn>\(role)\n")
                out.content(content)
                out.template("<end_of_turn>\n")
            }
            if addGenerationPrompt { out.template("<start_of_turn>model\n") }
        case .llama3:
            for m in messages {
                out.template("<|start_header_id|>\(m.role)<|end_header_id|>\n\n")
                out.content(m.content.trimmingWhitespace())
                out.template("<|eot_id|>")
            }
            if addGenerationPrompt { out.template("<|start_header_id|>assistant<|end_header_id|>\n\n") }
        case .mistral:
            var system: String? = nil
            for m in messages {
                switch m.role {
                case "system": system = m.content
                case "user":
                    let content = system.map { $0 + "\n\n" + m.content } ?? m.content
                    system = nil
                    out.template("[INST] ")
                    out.content(content)
                    out.template(" [/INST]")
                default:
                    out.template(" ")
                    out.content(m.content)
                    out.template("</s>")
                }
            }
        }
        return (out.text, out.ranges)
    }

    /// The literal system turn a ChatML template writes when the first message is not a
    /// system message (`{% if loop.first and messages[0]['role'] != 'system' %}…`).
    private static func chatmlDefaultSystem(_ template: String) -> String? {
        guard template.contains("!= 'system'") || template.contains("!= \"system\""),
              let open = template.firstRange(of: "<|im_start|>system\n") else { return nil }
        guard let close = template[open.upperBound...].firstRange(of: "<|im_end|>") else { return nil }
        let text = String(template[open.upperBound..<close.lowerBound])
        // A Jinja expression there (e.g. `{{ messages[0]['content'] }}`) is not a literal default.
        return text.contains("{{") || text.contains("{%") ? nil : text
    }
}

/// Text built from template pieces and content pieces, with the content's byte ranges.
private struct MarkedText {
    var text = ""
    var ranges: [Range<Int>] = []
    private var length = 0

    mutating func template(_ piece: String) {
        text += piece
        length += piece.utf8.count
    }

    mutating func content(_ piece: String) {
        let n = piece.utf8.count
        guard n > 0 else { return }
        text += piece
        ranges.append(length..<(length + n))
        length += n
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
