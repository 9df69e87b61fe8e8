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
    @Option(name: .long, help: "Also decode this many sequences at once (continuous batching) and compare one step's time with one sequence's, in the same run.")
    var batch: Int?
    @Flag(name: .long, help: "Print one JSON object per prompt length.") var json = false

    func run() throws {
        let lengths = try promptTokens.split(separator: ",").map { s -> Int in
            guard let n = Int(s.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw ValidationError("--prompt-tokens takes positive integers separated by commas, got '\(s)'")
            }
            return n
        }
        guard gen >= 0 else { throw ValidationError("--gen must not be negative") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        let cachePlan = try cache.plan()
        let engine = try model.loadEngine(progress: !json)
        let source = try BenchText.load(path: textFile)
        var corpus = engine.tokenize(source)
        guard !corpus.isEmpty else { throw ValidationError("the benchmark text tokenizes to nothing") }
        while corpus.count < (lengths.max() ?? 0) { corpus += corpus }
        if let batch {
            try BatchBench(engine: engine, plan: cachePlan, corpus: corpus, gen: max(gen, 1), json: json).run(lengths: lengths, batch: batch)
            return
        }
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

/// Decoding several sequences in one forward pass against one alone: the same prompts, the
/// same stepping (`BatchStepper`), alternated in one run so that machine noise hits both.
struct BatchBench {
    let engine: Engine
    let plan: CachePlan
    let corpus: [Int]
    let gen: Int
    let json: Bool

    func run(lengths: [Int], batch: Int) throws {
        for n in lengths {
            try engine.checkContext(tokens: n + gen + 1)
            // One lone sequence and the batch, stepped in turns: each pair of steps sees the same
            // load on a shared machine, so their ratio holds where absolute times drift.
            var loneItems = try decodingItems(sequences: 1, promptTokens: n)
            var batchItems = try decodingItems(sequences: batch, promptTokens: n)
            let singleStepper = BatchStepper(engine: engine, maxTokens: max(1, plan.chunk))
            let batchStepper = BatchStepper(engine: engine, maxTokens: max(batch, plan.chunk))
            var singleTimes: [Double] = [], batchTimes: [Double] = []
            for _ in 0..<gen {
                singleTimes.append(try timedStep(singleStepper, &loneItems))
                batchTimes.append(try timedStep(batchStepper, &batchItems))
            }
            let one = singleTimes.sorted()[gen / 2], many = batchTimes.sorted()[gen / 2]
            if json {
                try printJSON([
                    "prompt_tokens": n, "gen_tokens": gen, "batch": batch, "threads": engine.pool.threadCount,
                    "step_seconds_single": one, "step_seconds_batch": many, "step_time_ratio": many / one,
                    "tokens_per_second_single": 1 / one, "tokens_per_second_batch": Double(batch) / many,
                    "resident_bytes_peak": ResourceUsage.peakResidentBytes(),
                ] as [String: Any])
            } else {
                Terminal.writeOut(String(format: "prompt %5d: decode step %6.2f ms alone, %6.2f ms for %d sequences (%.2fx the time; %.1f vs %.1f tok/s in total)   RSS peak %.1f MiB\n",
                                         n, one * 1e3, many * 1e3, batch, many / one, Double(batch) / many, 1 / one,
                                         Double(ResourceUsage.peakResidentBytes()) / 1048576))
            }
        }
    }

    /// `sequences` sessions that have read their prompts and sampled their first tokens.
    private func decodingItems(sequences: Int, promptTokens n: Int) throws -> [BatchStepper.Item] {
        var items: [BatchStepper.Item] = []
        for s in 0..<sequences {
            let session = try engine.makeSession(cache: plan)
            // Each sequence reads its own stretch of the text.
            let start = (s * 997) % max(1, corpus.count - n)
            try session.prefill(Array(corpus[start..<(start + n)]))
            session.finishPrompt()
            let decoding = session.startDecoding(GenerationOptions(maxTokens: gen + 1, sampling: .greedy, stopAtEndOfTurn: false))
            items.append(BatchStepper.Item(session: session, work: .decode(decoding)))
        }
        try BatchStepper(engine: engine, maxTokens: max(sequences, plan.chunk)).step(&items)  // samples the first tokens
        return items
    }

    /// Seconds of one decoding step of `items`.
    private func timedStep(_ stepper: BatchStepper, _ items: inout [BatchStepper.Item]) throws -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try stepper.step(&items)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if let failed = items.first(where: { $0.error != nil })?.error { throw failed }
        return seconds
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
