// IndexMem — learning tests. Apache-2.0.
//
// The trainer end to end on a tiny random-weight model (seconds): a killed run resumes to the
// same adapter, layer shards merge to the same adapter, an adapter is refused by another
// model, and a learned policy whose budget is never reached computes the full cache's logits.

import Foundation
import IndexMem
import IndexMemLearn
import IndexMemSafetensors
import IndexMemTestSupport
import Testing

enum TinyTraining {
    static let directory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-learn-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }()

    static func model(_ name: String) throws -> String {
        let path = directory + "/tiny-\(name).gguf"
        if !FileManager.default.fileExists(atPath: path) { try TinyModelFixture.load(name).write(to: path) }
        return path
    }

    /// A small corpus of generated paragraphs.
    static func corpus() throws -> TrainingCorpus {
        let dir = directory + "/corpus"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let words = ["river", "stone", "window", "garden", "letter", "morning", "harbour", "engine", "candle", "mountain",
                     "the", "a", "of", "and", "to", "quiet", "old", "small", "bright", "slowly"]
        var rng = SplitMix64(seed: 11)
        let paragraphs = (0..<120).map { _ in (0..<(12 + rng.below(20))).map { _ in words[rng.below(words.count)] }.joined(separator: " ") + "." }
        try paragraphs.joined(separator: "\n\n").write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)
        return try TrainingCorpus(path: dir)
    }

    static func options(layers: ClosedRange<Int>? = nil, fit: String = "ridge") -> TrainingOptions {
        var o = TrainingOptions()
        o.sequences = 4
        o.length = 128
        o.block = 32
        o.window = 8
        o.validationEvery = 2
        o.checkpointEvery = 1
        o.queriesPerBlock = 8
        o.layers = layers
        o.staticFit = fit
        o.target = fit == "listwise" ? "question" : "max"
        return o
    }

    static func train(_ engine: Engine, _ corpus: TrainingCorpus, out: String, layers: ClosedRange<Int>? = nil,
                      stopAfter: Int? = nil, fit: String = "ridge") throws -> Bool {
        let trainer = IndexerTrainer(engine: engine, corpus: corpus, options: options(layers: layers, fit: fit))
        trainer.log = { _ in }
        trainer.stopAfter = stopAfter
        return try trainer.train(out: out, command: "test")
    }
}

@Suite("Indexer trainer on a tiny model", .serialized)
struct TrainerTests {
    @Test("a killed run resumes and ends with the same adapter; layer shards merge to it too", arguments: ["ridge", "listwise"])
    func resumeAndMerge(fit: String) throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let corpus = try TinyTraining.corpus()
        let dir = TinyTraining.directory
        let whole = dir + "/whole-\(fit).safetensors", resumed = dir + "/resumed-\(fit).safetensors"
        for p in [whole, resumed] { try? FileManager.default.removeItem(atPath: p + ".checkpoint") }
        #expect(try TinyTraining.train(engine, corpus, out: whole, fit: fit))
        #expect(try TinyTraining.train(engine, corpus, out: resumed, stopAfter: 2, fit: fit) == false)
        #expect(!FileManager.default.fileExists(atPath: resumed))
        #expect(try TinyTraining.train(engine, corpus, out: resumed, fit: fit))
        let a = try Safetensors(path: whole), b = try Safetensors(path: resumed)
        #expect(!a.tensors.isEmpty)
        #expect(a.tensors == b.tensors, "a resumed run must end with the same parameters")

        let part0 = dir + "/part0-\(fit).safetensors", part1 = dir + "/part1-\(fit).safetensors", merged = dir + "/merged-\(fit).safetensors"
        for p in [part0, part1] { try? FileManager.default.removeItem(atPath: p + ".checkpoint") }
        #expect(try TinyTraining.train(engine, corpus, out: part0, layers: 0...0, fit: fit))
        #expect(try TinyTraining.train(engine, corpus, out: part1, layers: 1...1, fit: fit))
        #expect(throws: (any Error).self) { try IndexerTrainer.mergeAdapters([part0], out: merged) }
        try IndexerTrainer.mergeAdapters([part0, part1], out: merged)
        #expect(try Safetensors(path: merged).tensors == a.tensors, "merged layer shards equal the whole run")
        _ = try engine.indexer(adapter: merged)
    }

    @Test("an adapter is refused by another model, naming both")
    func wrongModel() throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let out = TinyTraining.directory + "/for-qwen2.safetensors"
        try? FileManager.default.removeItem(atPath: out + ".checkpoint")
        _ = try TinyTraining.train(engine, try TinyTraining.corpus(), out: out)
        let other = try Engine(path: try TinyTraining.model("qwen3"), threads: 2)
        do {
            _ = try other.makeSession(cache: CacheConfiguration(policy: "indexmem", budget: 64, window: 8, adapter: out))
            Issue.record("the qwen3 model accepted the qwen2 adapter")
        } catch {
            let message = "\(error)"
            #expect(message.contains("tiny-qwen2.gguf") && message.contains("tiny-qwen3.gguf"), "\(message)")
        }
        #expect(throws: (any Error).self) {
            _ = try engine.makeSession(cache: CacheConfiguration(policy: "indexmem", budget: 64, window: 8, adapter: out + ".missing"))
        }
    }

    @Test("a learned policy whose budget is never reached gives the full cache's logits", arguments: ["indexmem-query", "indexmem-static"])
    func unreachedBudget(policy: String) throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let out = TinyTraining.directory + "/unreached.safetensors"
        if !FileManager.default.fileExists(atPath: out) {
            try? FileManager.default.removeItem(atPath: out + ".checkpoint")
            _ = try TinyTraining.train(engine, try TinyTraining.corpus(), out: out)
        }
        let prompt = Array(engine.tokenize("the quiet river and the old stone bridge over the harbour at morning").prefix(40))
        for mode in CacheConfiguration.Mode.allCases {
            let full = try engine.makeSession(cache: CacheConfiguration(chunk: 16))
            let learned = try engine.makeSession(cache: CacheConfiguration(policy: policy, budget: 1024, mode: mode, chunk: 16, adapter: out))
            try full.feed(prompt)
            try learned.feed(prompt)
            if mode == .prefillThenCompress { learned.compress() }
            #expect(full.lastLogits == learned.lastLogits)
            for token in [5, 17, 42] {
                try full.feed([token])
                try learned.feed([token])
                #expect(full.lastLogits == learned.lastLogits)
            }
            #expect(learned.cacheReport().indexerBytes > 0)
        }
    }
}
