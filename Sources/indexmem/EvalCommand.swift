// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem
import IndexMemEval

// MARK: - eval

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate cache policies on long-context tasks and datasets.",
        subcommands: [EvalRunCommand.self, EvalMergeCommand.self])
}

struct EvalRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a sweep (tasks or a JSONL dataset x policies x budgets x modes x lengths x samples), appending one JSON line per sample.",
        discussion: """
        Lists are comma-separated. A killed run resumes where it stopped: finished samples in --out are skipped.
        --shard k/n runs the items whose index is k modulo n; merge shard files with `indexmem eval merge`.
        Tasks: \(TaskRegistry.names.joined(separator: ", ")), perplexity.
        """)

    @OptionGroup var model: ModelArguments
    @Option(name: .long, help: "A sweep config (JSON with the keys tasks, lengths, policies, budgets, ratios, modes, samples, seed, depths, sinks, window, chunk, dataset, adapter, memories, kv_type); flags given here override it.")
    var config: String?
    @Option(name: .long, help: "JSONL dataset with context, question, answers (and optional answer_prefix, max_new_tokens, task, id).")
    var dataset: String?
    @Option(name: .long, help: "Task names.") var task: String?
    @Option(name: .long, help: "Prompt lengths in tokens.") var length: String?
    @Option(name: .long, help: "Policy specs (\(CachePolicy.available.map(\.name).joined(separator: ", "))).") var policy: String?
    @Option(name: .long, help: "Budgets in tokens per layer and KV head.") var budget: String?
    @Option(name: .long, help: "Budgets as fractions of the context.") var ratio: String?
    @Option(name: .long, help: "Modes: bounded, prefill-then-compress.") var mode: String?
    @Option(name: .long, help: "Protected first tokens.") var sinks: Int?
    @Option(name: .long, help: "Protected recent tokens.") var window: Int?
    @Option(name: .long, help: "Prefill chunk in tokens.") var chunk: Int?
    @Option(name: .long, help: "Samples per task and length.") var samples: Int?
    @Option(name: .long, help: "Seed of the generated samples (needles and haystacks).") var seed: UInt64?
    @Option(name: .long, help: "Needle depths in [0, 1] for a needle grid.") var depths: String?
    @Option(name: .long, help: "Run one shard, k/n.") var shard: String?
    @Option(name: .long, help: "Indexer adapter for the learned policies (default: adapters/<model file>.indexmem.safetensors).") var adapter: String?
    @Option(name: .long, help: "Latent memory modes for the evicting policies: off, on, softmax (e.g. off,on).") var memory: String?
    @Option(name: .long, help: "KV entry types every setting runs with: f16, q8_0 (e.g. f16,q8_0).") var kvType: String?
    @Option(name: .long, help: "Answer this many samples' questions in one batch (each context is still read alone); results are unchanged.")
    var batch: Int = 1
    @Option(name: .long, help: "Results file (JSON lines, appended).") var out: String
    @Flag(name: .long, help: "Prompts without the chat template.") var raw = false
    @Flag(name: .long, help: "Write each prompt's token ids into its result line (for checks against llama.cpp).") var recordPrompts = false

    func run() throws {
        var spec = try config.map { try SweepSpec.load(path: $0) } ?? SweepSpec()
        func list(_ s: String?) -> [String]? { s.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } } }
        func ints(_ s: String?, _ name: String) throws -> [Int]? {
            try list(s)?.map { guard let v = Int($0) else { throw ValidationError("--\(name) takes integers, got '\($0)'") }; return v }
        }
        if let t = list(task) { spec.tasks = t }
        if let l = try ints(length, "length") { spec.lengths = l }
        if let p = list(policy) { spec.policies = p }
        if let b = try ints(budget, "budget") { spec.budgets = b }
        if let r = list(ratio) { spec.ratios = try r.map { guard let v = Double($0) else { throw ValidationError("--ratio takes numbers") }; return v } }
        if let m = list(mode) { spec.modes = m }
        if let sinks { spec.sinks = sinks }
        if let window { spec.window = window }
        if let chunk { spec.chunk = chunk }
        if let samples { spec.samples = samples }
        if let seed { spec.seed = seed }
        if let d = list(depths) { spec.depths = try d.map { guard let v = Double($0), (0...1).contains(v) else { throw ValidationError("--depths takes numbers in [0, 1]") }; return v } }
        if let dataset { spec.dataset = dataset }
        if let adapter { spec.adapter = adapter }
        if let m = list(memory) { spec.memories = m }
        if let k = list(kvType) { spec.kvTypes = k }
        guard spec.samples > 0 else { throw ValidationError("--samples must be positive") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        let shardSpec = try shard.map { try Shard(parsing: $0) } ?? .all

        var datasetSamples: [EvalSample]? = nil
        if let path = spec.dataset {
            let ds = try JSONLDataset.load(path: path)
            for e in ds.errors { FileHandle.standardError.write(Data("eval: \(path): \(e) (skipped)\n".utf8)) }
            guard !ds.samples.isEmpty else { throw ValidationError("\(path) has no usable lines") }
            datasetSamples = ds.samples
        }
        let items = try spec.workItems(datasetSamples: datasetSamples)
        let results = try ResultsFile(path: out)
        let finished = results.finished
        let todo = items.filter { shardSpec.contains($0.index) && !finished.contains($0.key) }
        let mine = items.filter { shardSpec.contains($0.index) }.count
        let engine = try model.loadEngine(progress: Terminal.isInteractive)
        let runner = EvalRunner(engine: engine, spec: spec, datasetSamples: datasetSamples, raw: raw)
        runner.recordPrompts = recordPrompts
        log("\(items.count) work items in the sweep, \(mine) in shard \(shardSpec.index)/\(shardSpec.count), \(mine - todo.count) already in \(out), \(todo.count) to run")
        let start = Date()
        var done = 0
        func report(_ r: EvalResult) throws {
            try results.append(r)
            done += 1
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(done) * Double(todo.count - done)
            let line = String(format: "%@ %@ %@ %@ budget %@: score %.2f (%.1f s)", r.task, "\(r.length)", r.policyLabel, r.mode,
                              r.budget.map(String.init) ?? "-", r.score, r.seconds)
            if Terminal.isInteractive {
                let width = 24, filled = width * done / todo.count
                Terminal.status("[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(todo.count) ETA \(Self.duration(eta))  \(line)")
            } else {
                log("\(done)/\(todo.count) ETA \(Self.duration(eta)): \(line)")
            }
        }
        // Consecutive prefill-then-compress items of one sample and policy share one prefill;
        // with --batch, up to that many consecutive answer items share their answers' steps.
        let stepper = batch > 1 ? BatchStepper(engine: engine, maxTokens: max(spec.chunk, 256) + batch) : nil
        var i = 0
        while i < todo.count {
            var j = i + 1
            if let key = EvalRunner.sharedPrefillKey(todo[i]) {
                while j < todo.count && EvalRunner.sharedPrefillKey(todo[j]) == key { j += 1 }
            } else if let stepper, EvalRunner.batchable(todo[i]) {
                while j < todo.count && j - i < batch && EvalRunner.batchable(todo[j]) { j += 1 }
                try runner.run(batch: Array(todo[i..<j]), stepper: stepper, onResult: report)
                i = j
                continue
            }
            try runner.run(group: Array(todo[i..<j]), onResult: report)
            i = j
        }
        Terminal.clearStatus()
        log("done: \(todo.count) samples in \(Self.duration(Date().timeIntervalSince(start))), results in \(out)")
    }

    static func duration(_ s: Double) -> String {
        s >= 3600 ? String(format: "%dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60) : s >= 60 ? String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) : String(format: "%.0fs", s)
    }

    func log(_ s: String) { FileHandle.standardError.write(Data("eval: \(s)\n".utf8)) }
}

struct EvalMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge result files (shards) into a Markdown/CSV summary and SVG plots.")

    @Argument(help: "Result files (JSON lines).") var results: [String]
    @Option(name: .long, help: "Directory for summary.md, cells.csv and the plots.") var report: String
    @Option(name: .long, help: "Title of the summary.") var title: String = "IndexMem evaluation"

    func run() throws {
        guard !results.isEmpty else { throw ValidationError("give at least one results file") }
        let merged = try ResultsFile.merge(paths: results)
        let files = try Report.write(results: merged, to: report, title: title)
        FileHandle.standardError.write(Data("eval: \(merged.count) results from \(results.count) file(s); wrote \(files.count) files to \(report)\n".utf8))
    }
}
