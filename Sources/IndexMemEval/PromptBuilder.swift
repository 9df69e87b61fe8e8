// IndexMem — evaluation. Apache-2.0.
//
// Prompts go through the model's chat template: the user turn is the context followed by
// the question, and the assistant turn starts with the answer prefix. The prompt is two
// token blocks, context and question, so prefill-then-compress compresses after the context
// without having seen the question (kvpress's protocol). Template text is tokenized with
// special tokens; the sample's own text never is, so a dataset cannot inject control tokens.

import IndexMem

// MARK: - Prompts

/// A sample in the model's tokens.
public struct PreparedPrompt: Sendable {
    public var sample: EvalSample
    /// Template prefix, context (BOS first when the vocabulary adds it).
    public var contextTokens: [Int]
    /// Question, end of the user turn, start of the assistant turn, answer prefix.
    public var questionTokens: [Int]
    public var totalTokens: Int { contextTokens.count + questionTokens.count }
}

public struct PromptBuilder: Sendable {
    public let engine: Engine
    /// Feed the text as is, without the chat template.
    public let raw: Bool

    public init(engine: Engine, raw: Bool = false) {
        self.engine = engine
        self.raw = raw || engine.chatTemplate == nil
    }

    private static let contentStart: Character = "\u{E000}", contentEnd: Character = "\u{E001}", split: Character = "\u{E002}"

    /// The two token blocks of a sample.
    public func prepare(_ sample: EvalSample) -> PreparedPrompt {
        let tokenizer = engine.tokenizer
        if raw {
            let context = tokenizer.encode(sample.context, addSpecial: true, parseSpecial: false)
            var question = tokenizer.encode(sample.question, addSpecial: false, parseSpecial: false)
            if !sample.answerPrefix.isEmpty { question += tokenizer.encode("\n" + sample.answerPrefix, addSpecial: false, parseSpecial: false) }
            return PreparedPrompt(sample: sample, contextTokens: context, questionTokens: question)
        }
        let s = Self.self
        let content = "\(s.contentStart)\(sample.context)\(s.contentEnd)\(s.split)\(s.contentStart)\(sample.question)\(s.contentEnd)"
        let rendered = engine.formatChat([ChatMessage(role: "user", content: content)]) ?? content
        let halves = rendered.split(separator: s.split, maxSplits: 1, omittingEmptySubsequences: false)
        var context = tokens(String(halves[0]), addBOS: true)
        var question = tokens(halves.count > 1 ? String(halves[1]) : "", addBOS: false)
        if !sample.answerPrefix.isEmpty {
            question += tokenizer.encode(sample.answerPrefix, addSpecial: false, parseSpecial: false)
        }
        if context.isEmpty { context = question.isEmpty ? [] : [question.removeFirst()] }
        return PreparedPrompt(sample: sample, contextTokens: context, questionTokens: question)
    }

    /// Template text with special tokens, sample text without.
    private func tokens(_ text: String, addBOS: Bool) -> [Int] {
        let tokenizer = engine.tokenizer
        var out: [Int] = addBOS && tokenizer.vocabulary.addBos ? tokenizer.vocabulary.bosTokenId.map { [$0] } ?? [] : []
        var inContent = false
        var piece = ""
        func flush() {
            guard !piece.isEmpty else { return }
            out += tokenizer.encode(piece, addSpecial: false, parseSpecial: !inContent)
            piece = ""
        }
        for ch in text {
            if ch == Self.contentStart { flush(); inContent = true } else if ch == Self.contentEnd { flush(); inContent = false } else { piece.append(ch) }
        }
        flush()
        return out
    }
}

// MARK: - Exact lengths

public enum SampleBuilder {
    /// The id of a generated sample (known before it is built, for resuming).
    public static func sampleID(task: String, length: Int, index: Int, seed: UInt64, depth: Double?) -> String {
        "\(task)-\(length)-\(index)-s\(seed)" + (depth.map { String(format: "-d%.2f", $0) } ?? "")
    }

    /// Builds sample `index` of `task` whose prompt is exactly `length` tokens.
    /// - Parameters:
    ///   - depth: the needle's depth (0...1), or nil to draw it from the seed.
    public static func build(task: any EvalTask, length: Int, index: Int, seed: UInt64, depth: Double? = nil,
                             haystack: Haystack, prompts: PromptBuilder) throws -> PreparedPrompt {
        let sampleSeed = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03 &+ UInt64(length)
        let id = sampleID(task: task.name, length: length, index: index, seed: seed, depth: depth)
        func make(_ filler: Int, padding: String = "") -> PreparedPrompt {
            var item = task.build(seed: sampleSeed, filler: filler, haystack: haystack, depth: depth)
            if !padding.isEmpty {
                // Padding goes at the end of the haystack, before the closing blank line.
                if item.context.hasSuffix("\n\n") { item.context.removeLast(2); item.context += padding + "\n\n" } else { item.context += padding }
            }
            return prompts.prepare(EvalSample(id: id, task: task.name, context: item.context, question: item.question,
                                              answers: item.answers, answerPrefix: item.answerPrefix,
                                              maxNewTokens: task.maxNewTokens, depth: item.depth))
        }
        // Largest filler whose prompt fits: grow geometrically, then bisect.
        let empty = make(0)
        guard empty.totalTokens <= length else {
            throw EvalError.cannotFitLength(task: task.name, length: length, reason: "the prompt without filler already has \(empty.totalTokens) tokens")
        }
        var lo = 0, hi = 1
        var probe = make(hi)
        while probe.totalTokens <= length {
            lo = hi
            let perUnit = max(1, Double(probe.totalTokens - empty.totalTokens) / Double(hi))
            hi = max(hi * 2, Int(Double(length - empty.totalTokens) / perUnit * 1.1) + 1)
            guard hi < 10_000_000 else { throw EvalError.cannotFitLength(task: task.name, length: length, reason: "filler does not grow the prompt") }
            probe = make(hi)
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if make(mid).totalTokens <= length { lo = mid } else { hi = mid }
        }
        var best = make(lo)
        // Top up with padding until the length is exact: " ." is one token in most
        // vocabularies, so aim with a run of them, then correct.
        var count = length - best.totalTokens
        for _ in 0..<16 where best.totalTokens != length && count > 0 {
            let candidate = make(lo, padding: String(repeating: " .", count: count))
            if candidate.totalTokens <= length && candidate.totalTokens > best.totalTokens { best = candidate }
            if candidate.totalTokens == length { break }
            count += length - candidate.totalTokens
        }
        // Vocabularies that merge dots: one piece at a time, trying other marks.
        var padding = ""
        let pads = [" .", " -", " *", " ~", " +"]
        var attempts = 0
        let maxAttempts = 2 * (length - best.totalTokens) + 20
        while best.totalTokens < length && attempts < maxAttempts {
            attempts += 1
            var advanced = false
            for pad in pads {
                let candidate = make(lo, padding: padding + pad)
                if candidate.totalTokens <= length && candidate.totalTokens > best.totalTokens {
                    padding += pad
                    best = candidate
                    advanced = true
                    break
                }
            }
            if !advanced { break }
        }
        guard best.totalTokens == length else {
            throw EvalError.cannotFitLength(task: task.name, length: length, reason: "padding reached \(best.totalTokens) tokens")
        }
        return best
    }
}

import Foundation
