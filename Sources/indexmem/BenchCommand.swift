// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem

// MARK: - bench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure prefill and decode speed at given prompt lengths.")

    @OptionGroup var model: ModelArguments
    @OptionGroup var cache: CacheArguments
    @Option(name: .long, help: "Comma-separated prompt lengths in tokens.") var promptTokens: String = "512,2048"
    @Option(name: .long, help: "Tokens to decode after each prompt.") var gen: Int = 64
    @Option(name: .long, help: "Text file whose tokens make the prompt (repeated as needed).") var textFile: String?
    @Flag(name: .long, help: "Print one JSON object per prompt length.") var json = false

    func run() throws {
        let lengths = try promptTokens.split(separator: ",").map { s -> Int in
            guard let n = Int(s.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw ValidationError("--prompt-tokens takes positive integers separated by commas, got '\(s)'")
            }
            return n
        }
        guard gen >= 0 else { throw ValidationError("--gen must not be negative") }
        let cachePlan = try cache.plan()
        let engine = try model.loadEngine(progress: !json)
        let source = try BenchText.load(path: textFile)
        var corpus = engine.tokenize(source)
        guard !corpus.isEmpty else { throw ValidationError("the benchmark text tokenizes to nothing") }
        while corpus.count < (lengths.max() ?? 0) { corpus += corpus }
        for n in lengths {
            try engine.checkContext(tokens: n + gen)
            let session = try engine.makeSession(cache: cachePlan)
            let result = try session.generate(
                prompt: Array(corpus.prefix(n)),
                options: GenerationOptions(maxTokens: gen + 1, sampling: .greedy, stopAtEndOfTurn: false),
                progress: json ? nil : Terminal.progress("prefill \(n)"))
            let t = result.timings
            if json {
                try printJSON([
                    "prompt_tokens": n, "gen_tokens": t.decodeTokens, "threads": engine.pool.threadCount,
                    "timings": t.json, "cache": result.cache.json,
                    "resident_bytes_peak": ResourceUsage.peakResidentBytes(),
                ] as [String: Any])
            } else {
                Terminal.writeOut(String(format: "prompt %5d: prefill %8.1f tok/s (%.2f s)   decode %6.1f tok/s (%d tokens)   KV peak %d B   RSS peak %.1f MiB\n",
                                         n, t.prefillTokensPerSecond, t.prefillSeconds, t.decodeTokensPerSecond, t.decodeTokens,
                                         result.cache.kvBytesPeak, Double(ResourceUsage.peakResidentBytes()) / 1048576))
            }
        }
    }
}

/// The default benchmark text: Debian's license texts (present on every Debian system), the
/// same text the peer-comparison script gives llama.cpp.
enum BenchText {
    static let licenseFiles = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "MPL-1.1", "Artistic", "CC0-1.0"]

    static func load(path: String?) throws -> String {
        if let path {
            guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read --text-file \(path)") }
            return s
        }
        let texts = licenseFiles.compactMap { try? String(contentsOfFile: "/usr/share/common-licenses/\($0)", encoding: .utf8) }
        if texts.isEmpty {
            // No Debian license texts: a generated but varied text keeps the benchmark runnable.
            return (0..<4000).map { "Sentence \($0) of the benchmark text talks about item \($0 * 7919 % 1000)." }.joined(separator: " ")
        }
        return texts.joined(separator: "\n\n")
    }
}
