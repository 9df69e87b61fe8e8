// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem

// MARK: - generate

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate text from a prompt.")

    @OptionGroup var model: ModelArguments
    @OptionGroup var cache: CacheArguments

    @Option(name: .long, help: "Prompt text.") var prompt: String?
    @Option(name: .long, help: "Read the prompt from a file.") var promptFile: String?
    @Option(name: .long, help: "Most tokens to generate.") var maxTokens: Int = 128
    // Defaults: llama.cpp's (`SamplingOptions.llamaCpp`).
    @Option(name: .long, help: "Sampling temperature (0 = greedy).") var temperature: Float = SamplingOptions.llamaCpp.temperature
    @Option(name: .long, help: "Top-k (0 = off).") var topK: Int = SamplingOptions.llamaCpp.topK
    @Option(name: .long, help: "Top-p (1 = off).") var topP: Float = SamplingOptions.llamaCpp.topP
    @Option(name: .long, help: "Min-p (0 = off).") var minP: Float = SamplingOptions.llamaCpp.minP
    @Option(name: .long, help: "Repetition penalty (1 = off).") var repeatPenalty: Float = SamplingOptions.llamaCpp.repetitionPenalty
    @Option(name: .long, help: "Random seed (default: a random one, as llama.cpp).") var seed: UInt64?
    @Option(name: .long, help: "System message for the chat template.") var system: String?
    @Flag(name: .long, help: "Feed the prompt as is, without the chat template (control tokens such as <|im_start|> in it are parsed).") var raw = false
    @Flag(name: .long, help: "Print one JSON object instead of streaming text.") var json = false

    func validate() throws {
        if (prompt == nil) == (promptFile == nil) { throw ValidationError("give exactly one of --prompt or --prompt-file") }
        if maxTokens < 0 { throw ValidationError("--max-tokens must not be negative") }
        if temperature < 0 { throw ValidationError("--temperature must not be negative") }
        if !(0...1).contains(topP) || !(0...1).contains(minP) { throw ValidationError("--top-p and --min-p must be in [0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must not be negative") }
        if repeatPenalty <= 0 { throw ValidationError("--repeat-penalty must be positive") }
    }

    func run() throws {
        let cachePlan = try cache.plan()
        var text = prompt ?? ""
        if let promptFile {
            guard let data = FileManager.default.contents(atPath: promptFile) else {
                throw ValidationError("cannot read --prompt-file \(promptFile)")
            }
            guard let s = String(data: data, encoding: .utf8) else { throw ValidationError("--prompt-file \(promptFile) is not UTF-8") }
            text = s
        }
        let engine = try model.loadEngine(progress: !json)
        let promptIds: [Int]
        if raw || engine.chatTemplate == nil {
            // Raw text is the caller's own prompt: control tokens in it are parsed (as llama.cpp does).
            promptIds = engine.tokenize(text, parseSpecial: true)
        } else {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            // Message text is text: only the template's markers are special.
            promptIds = engine.tokenizeChat(messages) ?? engine.tokenize(text, parseSpecial: true)
        }
        guard !promptIds.isEmpty else { throw ValidationError("the prompt is empty") }
        let sampling = SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                       repetitionPenalty: repeatPenalty, seed: seed ?? UInt64.random(in: 0...UInt64.max))
        let session = try engine.makeSession(cache: cachePlan)
        let result = try session.generate(
            prompt: promptIds, options: GenerationOptions(maxTokens: maxTokens, sampling: sampling),
            progress: json ? nil : Terminal.progress("prefill")
        ) { _, piece in
            if !json { Terminal.writeOut(piece) }
            return true
        }
        if json {
            try printJSON([
                "model": ["path": engine.path, "architecture": engine.configuration.architecture, "sha256": engine.sha256],
                "prompt_token_ids": result.promptTokens,
                "generated_token_ids": result.generatedTokens,
                "text": result.text,
                "finish_reason": result.finishReason.rawValue,
                "cache": result.cache.json,
                "timings": result.timings.json,
                "resident_bytes_peak": ResourceUsage.peakResidentBytes(),
            ] as [String: Any])
        } else {
            Terminal.writeOut("\n")
            if Terminal.isInteractive {
                let t = result.timings
                FileHandle.standardError.write(Data(String(
                    format: "[prefill %d tokens %.1f tok/s, decode %d tokens %.1f tok/s]\n",
                    t.prefillTokens, t.prefillTokensPerSecond, t.decodeTokens, t.decodeTokensPerSecond).utf8))
            }
        }
    }
}
