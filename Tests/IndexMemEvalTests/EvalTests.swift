// IndexMem — evaluation tests. Apache-2.0.

import Foundation
import IndexMem
import IndexMemEval
import IndexMemTestSupport
import Testing

enum EvalFixtures {
    static let engine: Result<Engine, any Error> = Result { try Engine(path: try requireDefaultModel(), threads: 2) }
    /// A small prose haystack written by the test (the real one comes from setup), so these
    /// tests need no download beyond the model.
    static let prose: Haystack = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-haystack-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 11)
        let words = ["river", "stone", "quiet", "morning", "light", "window", "letter", "garden", "winter", "promise", "teacher", "market"]
        let entries = (0..<400).map { i -> String in
            let sentences = (0..<(2 + i % 3)).map { _ in
                (0..<(5 + rng.below(8))).map { _ in words[rng.below(words.count)] }.joined(separator: " ").capitalized + "."
            }
            return sentences.joined(separator: " ")
        }
        try? entries.joined(separator: "\n%\n").write(toFile: dir + "/prose", atomically: true, encoding: .utf8)
        return try! Haystack.load(.prose, directory: dir)
    }()
    static func haystack(_ kind: HaystackKind) throws -> Haystack { kind == .prose ? prose : try Haystack.load(.noise) }
}

@Suite("Task generators")
struct GeneratorTests {
    @Test("every task hits the requested length exactly, deterministically, with its answers in the context",
          arguments: TaskRegistry.names, [1024, 3000])
    func exactLengths(task name: String, length: Int) throws {
        let engine = try EvalFixtures.engine.get()
        let prompts = PromptBuilder(engine: engine)
        let task = try TaskRegistry.task(named: name)
        let haystack = try EvalFixtures.haystack(task.haystack)
        let a = try SampleBuilder.build(task: task, length: length, index: 3, seed: 9, haystack: haystack, prompts: prompts)
        let b = try SampleBuilder.build(task: task, length: length, index: 3, seed: 9, haystack: haystack, prompts: prompts)
        #expect(a.totalTokens == length)
        #expect(a.contextTokens == b.contextTokens && a.questionTokens == b.questionTokens)
        #expect(!a.sample.answers.isEmpty)
        for answer in a.sample.answers { #expect(a.sample.context.contains(answer), "\(answer) not in the context") }
        let other = try SampleBuilder.build(task: task, length: length, index: 4, seed: 9, haystack: haystack, prompts: prompts)
        #expect(other.sample.context != a.sample.context, "another sample index gives another sample")
    }

    @Test("the needle sits at the stated depth", arguments: [0.0, 0.25, 0.5, 0.75, 1.0])
    func depth(_ depth: Double) throws {
        let engine = try EvalFixtures.engine.get()
        let task = try TaskRegistry.task(named: "niah_single_prose")
        let p = try SampleBuilder.build(task: task, length: 2048, index: 0, seed: 1, depth: depth, haystack: EvalFixtures.prose,
                                        prompts: PromptBuilder(engine: engine))
        #expect(p.sample.depth == depth)
        let context = p.sample.context
        let body = context.components(separatedBy: "\n\n")[1]
        let needle = try #require(body.range(of: "The secret number for the "))
        let at = Double(body.distance(from: body.startIndex, to: needle.lowerBound)) / Double(body.count)
        #expect(abs(at - depth) < 0.05, "needle at \(at) of the haystack, asked for \(depth)")
    }

    @Test("the seed changes the haystack, not only the needle")
    func seedChangesHaystack() throws {
        let units1 = EvalFixtures.prose.units(20, seed: 1), units2 = EvalFixtures.prose.units(20, seed: 2)
        #expect(units1 != units2)
        #expect(EvalFixtures.prose.units(20, seed: 1) == units1)
    }

    @Test("context and question are separate token blocks; the question is not in the context")
    func questionAfterContext() throws {
        let engine = try EvalFixtures.engine.get()
        let p = try SampleBuilder.build(task: try TaskRegistry.task(named: "niah_multikey"), length: 1500, index: 0, seed: 2,
                                        haystack: EvalFixtures.prose, prompts: PromptBuilder(engine: engine))
        let contextText = engine.tokenizer.decode(p.contextTokens, special: true)
        let questionText = engine.tokenizer.decode(p.questionTokens, special: true)
        #expect(contextText.hasPrefix("<|im_start|>system"))
        #expect(!contextText.contains("What is the secret number"))
        #expect(questionText.contains("What is the secret number") && questionText.contains("<|im_start|>assistant\n"))
        #expect(questionText.hasSuffix(p.sample.answerPrefix))
    }
}

@Suite("Scoring, datasets, sweeps")
struct HarnessTests {
    @Test("string_match_all counts the fraction of answers found, case-insensitively")
    func scoring() {
        #expect(Scoring.stringMatchAll(output: "The number is 1234567.", answers: ["1234567"]) == 1)
        #expect(Scoring.stringMatchAll(output: "APPLE and pear", answers: ["apple", "banana"]) == 0.5)
        #expect(Scoring.stringMatchAll(output: "nothing", answers: ["a1", "b2", "c3"]) == 0)
        #expect(Scoring.stringMatchAll(output: "x", answers: []) == 0)
    }

    @Test("a malformed JSONL line is reported with its line number; the others load")
    func jsonlErrors() {
        let text = """
        {"context": "c1", "question": "q1", "answers": ["a"]}
        {"context": "c2", "question": "q2"}
        not json
        {"context": "c4", "question": "q4", "answers": "single", "answer_prefix": "A:", "max_new_tokens": 12, "task": "t", "id": 7}

        {"context": 5, "question": "q6", "answers": ["x"]}
        {"context": "c7", "question": "q7", "answers": ["a"], "max_new_tokens": -3}
        """
        let ds = JSONLDataset.parse(Data(text.utf8), name: "toy")
        #expect(ds.samples.map(\.context) == ["c1", "c4"])
        #expect(ds.samples[1].answers == ["single"] && ds.samples[1].maxNewTokens == 12 && ds.samples[1].id == "7" && ds.samples[1].task == "t")
        #expect(ds.errors.count == 4)
        #expect(ds.errors[0].hasPrefix("line 2:") && ds.errors[0].contains("answers"))
        #expect(ds.errors[1].hasPrefix("line 3:"))
        #expect(ds.errors[2].hasPrefix("line 6:") && ds.errors[2].contains("context"))
        #expect(ds.errors[3].hasPrefix("line 7:") && ds.errors[3].contains("max_new_tokens"))
    }

    static func spec() -> SweepSpec {
        var s = SweepSpec()
        s.tasks = ["niah_single_noise", "variable_tracking"]
        s.lengths = [1024, 2048]
        s.policies = ["full", "window", "h2o"]
        s.budgets = [128, 256]
        s.modes = ["bounded", "prefill-then-compress"]
        s.samples = 3
        return s
    }

    @Test("shards are disjoint and together complete", arguments: [1, 2, 3, 7])
    func shards(n: Int) throws {
        let items = try Self.spec().workItems()
        #expect(items.count == 2 * 2 * 3 * (1 + 2 * 2 * 2))
        var seen: [Int] = []
        for k in 0..<n {
            let shard = Shard(index: k, count: n)
            seen += items.filter { shard.contains($0.index) }.map(\.index)
        }
        #expect(seen.sorted() == items.map(\.index))
        #expect(Set(items.map(\.key)).count == items.count, "every work item has its own key")
        #expect(throws: EvalError.self) { try Shard(parsing: "3/3") }
        #expect(throws: EvalError.self) { try Shard(parsing: "x") }
    }

    static func result(_ item: WorkItem, score: Double) -> EvalResult {
        EvalResult(id: item.sampleID, task: item.task, length: item.length, policy: item.key.policy, budget: item.cache.budget,
                   ratio: item.cache.ratio, mode: item.cache.mode.rawValue, score: score, output: "o", answers: ["a"], kvBytesPeak: 1,
                   kvBytesFullCache: 2, modelSha256: "sha", seconds: 0.5, depth: item.depth, sample: item.sample, seed: 0,
                   sinks: item.cache.sinks, window: item.cache.window, chunk: item.cache.chunk, evictions: 0, generatedTokens: 1,
                   perplexity: nil, dataset: nil)
    }

    @Test("a killed run resumes: finished lines are kept, a line cut short is dropped, nothing is run twice")
    func resume() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-resume-\(getpid()).jsonl").path
        try? FileManager.default.removeItem(atPath: path)
        let items = try Self.spec().workItems()
        do {
            let file = try ResultsFile(path: path)
            for item in items.prefix(10) { try file.append(Self.result(item, score: 1)) }
        }
        // The kill: half of the 11th line reached the disk.
        let partial = try JSONEncoder().encode(Self.result(items[10], score: 1))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: partial.prefix(partial.count / 2))
        try handle.close()
        let resumed = try ResultsFile(path: path)
        #expect(resumed.results.count == 10)
        let todo = items.filter { !resumed.finished.contains($0.key) }
        #expect(todo.count == items.count - 10)
        #expect(todo.first?.index == 10)
        for item in todo { try resumed.append(Self.result(item, score: 0)) }
        let final = try ResultsFile.read(path: path)
        #expect(final.results.count == items.count)
        #expect(final.validBytes == final.totalBytes)
        #expect(Set(final.results.map(\.key)).count == items.count, "no work item twice")
        // The written lines always carry budget, even when null.
        let firstLine = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")[0]
        #expect(firstLine.contains("\"budget\":null"))
    }

    @Test("merge combines shard files and writes a summary, a CSV and plots")
    func merge() throws {
        let items = try Self.spec().workItems()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-merge-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for k in 0..<2 {
            let file = try ResultsFile(path: "\(dir)/shard\(k).jsonl")
            for item in items where Shard(index: k, count: 2).contains(item.index) {
                try file.append(Self.result(item, score: Double(item.cache.budget ?? 512) / 512))
            }
        }
        let merged = try ResultsFile.merge(paths: ["\(dir)/shard0.jsonl", "\(dir)/shard1.jsonl", "\(dir)/shard0.jsonl"])
        #expect(merged.count == items.count)
        let files = try Report.write(results: merged, to: dir + "/report")
        #expect(files.contains("summary.md") && files.contains("cells.csv"))
        #expect(files.contains { $0.hasPrefix("curve_niah_single_noise_1024_bounded") })
        let summary = try String(contentsOfFile: dir + "/report/summary.md", encoding: .utf8)
        #expect(summary.contains("| h2o | bounded | 0.25 ± 0.00 (3) | 0.50 ± 0.00 (3) | 1.00 ± 0.00 (3) |"))
    }

    @Test("a needle grid is drawn for depths swept across lengths, not for depths drawn per sample")
    func needleGrid() throws {
        var spec = SweepSpec()
        spec.tasks = ["niah_single_noise"]
        spec.lengths = [1024, 2048]
        spec.policies = ["full", "snapkv"]
        spec.budgets = [256]
        spec.modes = ["prefill-then-compress"]
        spec.depths = [0, 0.5, 1]
        let swept = try spec.workItems().map { Self.result($0, score: $0.depth == 0.5 ? 1 : 0) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-grid-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        let files = try Report.write(results: swept, to: dir + "/swept")
        #expect(files.contains("grid_niah_single_noise_full_full_full.svg"))
        #expect(files.contains("grid_niah_single_noise_snapkv_256_prefill-then-compress.svg"))
        let svg = try String(contentsOfFile: dir + "/swept/grid_niah_single_noise_full_full_full.svg", encoding: .utf8)
        #expect(svg.contains("50%") && svg.contains("2048"))

        // Each length's sample has its own seed-drawn depth: nothing to draw a grid from.
        let drawn = swept.enumerated().map { i, r -> EvalResult in
            var r = r
            r.depth = 0.1 + Double(i) * 0.07 + (r.length == 1024 ? 0 : 0.03)
            return r
        }
        let none = try Report.write(results: drawn, to: dir + "/drawn")
        #expect(!none.contains { $0.hasPrefix("grid_") })
    }
}

@Suite("Prefill-then-compress from one prefill")
struct SharedPrefillTests {
    @Test("compressing one prefill to each budget, largest first, equals compressing each from scratch",
          arguments: ["h2o", "pyramid"])
    func sharedEqualsSeparate(policy: String) throws {
        let engine = try EvalFixtures.engine.get()
        var spec = SweepSpec()
        spec.tasks = ["niah_single_noise"]
        spec.lengths = [600]
        spec.policies = [policy]
        spec.budgets = [96, 160, 320]
        spec.modes = ["prefill-then-compress"]
        spec.window = 32
        spec.chunk = 128
        let items = try spec.workItems()
        #expect(items.count == 3)
        let runner = EvalRunner(engine: engine, spec: spec)
        var shared: [EvalResult] = []
        try runner.run(group: items) { shared.append($0) }
        let separate = try items.map { try runner.run($0) }
        for s in separate {
            let g = try #require(shared.first { $0.budget == s.budget })
            #expect(g.outputTokenIds == s.outputTokenIds, "budget \(String(describing: s.budget))")
            #expect(g.score == s.score)
            #expect(g.key == s.key)
        }
    }
}
