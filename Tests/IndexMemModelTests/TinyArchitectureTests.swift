// IndexMem — model tests. Apache-2.0.
//
// Architectures with no real weights here (qwen2, qwen3, mistral, llama 3) on tiny
// random-weight GGUF files that the tests write from Tests/Fixtures/tiny (made by
// scripts/make_tiny_fixtures.py, which ran llama.cpp on the same bytes): identical
// tokenization, identical greedy tokens, logits within tolerance. Plus the sliding window
// a Mistral file may set, and the refusal of an architecture the engine does not know.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemGGUF
import IndexMemKernels
import IndexMemModel
import IndexMemTestSupport
import Testing

/// The tiny models, written once per test process into a temporary directory.
enum TinyModels {
    static let names = ["qwen2", "qwen3", "mistral", "llama3"]
    static let directory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-tiny-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }()

    /// Writes `name` (with metadata overrides) and returns its path.
    static func write(_ name: String, variant: String = "", override: [String: GGUFValue?] = [:]) throws -> String {
        let path = directory + "/tiny-\(name)\(variant).gguf"
        try TinyModelFixture.load(name).write(to: path, override: override)
        return path
    }

    static func sha256(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { SHA256.hex(of: $0) }
    }
}

@Suite("Tiny qwen2, qwen3, mistral and llama 3 models against llama.cpp", .serialized)
struct TinyArchitectureTests {
    /// Largest allowed |ours - llama.cpp| on a top logit (the fixture stores 5 decimals).
    static let logitTolerance: Float = 1e-3

    @Test("the GGUF written here is byte for byte the file llama.cpp ran", arguments: TinyModels.names)
    func sameFile(name: String) throws {
        let fixture = try TinyModelFixture.load(name)
        let path = try TinyModels.write(name)
        #expect(try TinyModels.sha256(path) == fixture.file_sha256, "\(name): the generated file differs from the fixture's")
    }

    @Test("configuration: each architecture's fields", arguments: TinyModels.names)
    func configuration(name: String) throws {
        let engine = try Engine(path: try TinyModels.write(name), threads: 2)
        let c = engine.configuration
        switch name {
        case "qwen2":
            #expect(c.architecture == "qwen2" && c.ropeHalves && c.qkvBias && !c.queryKeyNorm)
            #expect(engine.weights.layers[0].queryBias != nil && engine.weights.tiedOutput)
            #expect(engine.vocabulary.preTokenizer == "qwen2" && engine.chatTemplate?.kind == .chatml)
        case "qwen3":
            #expect(c.architecture == "qwen3" && c.ropeHalves && c.queryKeyNorm && !c.qkvBias && !engine.weights.tiedOutput)
            #expect(engine.weights.layers[0].queryNorm?.count == c.headDimension)
        case "mistral":
            #expect(c.architecture == "llama" && !c.ropeHalves && c.slidingWindow == nil)
            #expect(engine.vocabulary.model == "llama" && engine.vocabulary.addSpacePrefix && engine.chatTemplate?.kind == .mistral)
        default:
            #expect(c.architecture == "llama" && !c.ropeHalves && c.ropeBase == 500_000)
            #expect(engine.weights.ropeFrequencyFactors?.count == c.ropeDimensions / 2)
            #expect(engine.vocabulary.preTokenizer == "llama-bpe" && engine.chatTemplate?.kind == .llama3)
        }
        #expect(c.slidingLayerCount == 0)
    }

    @Test("tokenization equals llama.cpp's", arguments: TinyModels.names)
    func tokenize(name: String) throws {
        let fixture = try TinyModelFixture.load(name)
        let engine = try Engine(path: try TinyModels.write(name), threads: 2)
        for c in fixture.tokenize {
            let ours = engine.tokenizer.encode(c.text, addSpecial: false, parseSpecial: false)
            #expect(ours == c.ids, "\(name) '\(c.name)': ours \(ours) llama.cpp \(c.ids)")
            if c.roundtrip { #expect(engine.tokenizer.decode(ours) == c.text, "\(name) '\(c.name)' round trip") }
        }
        for g in fixture.greedy {
            #expect(engine.tokenizer.encode(g.prompt, addSpecial: true, parseSpecial: g.special) == g.prompt_ids, "\(name) prompt '\(g.name)'")
        }
    }

    @Test("greedy tokens identical and logits within tolerance", arguments: TinyModels.names)
    func greedy(name: String) throws {
        let fixture = try TinyModelFixture.load(name)
        let engine = try Engine(path: try TinyModels.write(name), threads: 2)
        for g in fixture.greedy {
            let prompt = GreedyFixture.Prompt(name: g.name, prompt: g.prompt, special: g.special, prompt_ids: g.prompt_ids,
                                              generated_ids: g.generated_ids, greedy_margins: g.greedy_margins,
                                              top_logits: g.top_logits.map { .init(position: $0.position, ids: $0.ids, logits: $0.logits) })
            let (generated, worst) = try OracleCheck.greedy(weights: engine.weights, pool: engine.pool, prompt: prompt, chunk: 64)
            print("tiny \(name) '\(g.name)': max top-logit difference \(worst), smallest margin \(g.greedy_margins.min() ?? 0)")
            #expect(generated == g.generated_ids, "\(name) '\(g.name)': greedy tokens differ")
            #expect(worst < Self.logitTolerance, "\(name) '\(g.name)': max |logit difference| \(worst)")
        }
    }

    @Test("generate through a session equals the fixture's greedy tokens", arguments: TinyModels.names)
    func session(name: String) throws {
        let fixture = try TinyModelFixture.load(name)
        let engine = try Engine(path: try TinyModels.write(name), threads: 2)
        let g = fixture.greedy[1]
        let session = try engine.makeSession()
        let result = try session.generate(prompt: g.prompt_ids, options: GenerationOptions(maxTokens: g.generated_ids.count, stopAtEndOfTurn: false))
        #expect(result.generatedTokens == g.generated_ids)
    }

    @Test("an architecture the engine does not know is refused with its name")
    func unknownArchitecture() throws {
        let path = try TinyModels.write("qwen2", variant: "-phi3", override: ["general.architecture": .string("phi3")])
        do {
            _ = try Engine(path: path, threads: 1)
            Issue.record("phi3 was accepted")
        } catch let error as ModelError {
            let message = "\(error)"
            #expect(message.contains("'phi3'") && message.contains("gemma3") && message.contains("qwen2"), "\(message)")
        }
    }

    // MARK: - Mistral's sliding window

    /// The last layer's attention output (`kqv_out`) at the last position of `tokens`, with a
    /// full cache. (The tiny random model's logits hardly depend on distant tokens once its
    /// activations are quantized, so the window is checked where it acts.)
    static func lastAttention(_ weights: ModelWeights, _ tokens: [Int]) throws -> [Float] {
        let pool = ThreadPool(threadCount: 2)
        let t = Transformer(weights: weights, maxChunk: 16, pool: pool)
        let caches = t.makeFullCaches(capacity: tokens.count)
        let last = weights.configuration.layerCount - 1
        var out: [Float] = []
        t.observer = { layer, name, values, rows, columns in
            if layer == last && name == "kqv_out" { out = Array(UnsafeBufferPointer(start: values + (rows - 1) * columns, count: columns)) }
        }
        var logits = [Float](repeating: 0, count: weights.configuration.vocabularySize)
        try logits.withUnsafeMutableBufferPointer {
            try t.forward(tokens: tokens, startPosition: 0, caches: caches, logits: .last, into: $0.baseAddress)
        }
        return out
    }

    /// Logits at the last position of `tokens` with a full cache.
    static func lastLogits(_ weights: ModelWeights, _ tokens: [Int]) throws -> [Float] {
        let pool = ThreadPool(threadCount: 2)
        let t = Transformer(weights: weights, maxChunk: 16, pool: pool)
        let caches = t.makeFullCaches(capacity: tokens.count)
        var logits = [Float](repeating: 0, count: weights.configuration.vocabularySize)
        try logits.withUnsafeMutableBufferPointer {
            try t.forward(tokens: tokens, startPosition: 0, caches: caches, logits: .last, into: $0.baseAddress)
        }
        return logits
    }

    static func weights(_ path: String) throws -> ModelWeights {
        let file = try GGUFFile(path: path)
        return try ModelWeights(file: file, configuration: try ModelConfiguration(gguf: file))
    }

    /// With a window W on every layer of an L-layer model, the output at position p depends
    /// only on positions > p - L (W - 1): earlier tokens can change without changing a bit.
    @Test("a Mistral file's sliding window: every layer slides, nothing beyond L (W - 1) leaks")
    func mistralSlidingWindow() throws {
        let window = 8
        let windowed = try Self.weights(try TinyModels.write("mistral", variant: "-swa8", override: ["llama.attention.sliding_window": .uint32(UInt32(window))]))
        let c = windowed.configuration
        #expect(c.slidingWindow == window && c.slidingLayerCount == c.layerCount)
        #expect(c.attentionShape(layer: 1).slidingWindow == window)
        let reach = c.layerCount * (window - 1)  // 14
        let base = (0..<40).map { 300 + ($0 * 7) % 200 }
        let reference = try Self.lastAttention(windowed, base)
        // Tokens before position 39 - 14 do not matter...
        var farChanged = base
        for i in 0..<(39 - reach) { farChanged[i] = 280 + i }
        #expect(try Self.lastAttention(windowed, farChanged) == reference)
        #expect(try Self.lastLogits(windowed, farChanged) == Self.lastLogits(windowed, base))
        // (Whether nearer tokens change it cannot be seen on this random model: its attention
        // is one-hot, so Gemma 3's test checks that side on real weights.)
        // A window at least as long as the sequence is no window at all, bit for bit.
        let wide = try Self.weights(try TinyModels.write("mistral", variant: "-swa64", override: ["llama.attention.sliding_window": .uint32(64)]))
        let plain = try Self.weights(try TinyModels.write("mistral"))
        #expect(try Self.lastAttention(wide, base) == Self.lastAttention(plain, base))
        #expect(try Self.lastLogits(wide, base) == Self.lastLogits(plain, base))
    }

    /// A session keeps only the window on sliding layers (whatever the policy) and still
    /// computes what a full cache computes, up to float summation order.
    @Test("sessions bound sliding-window layers by their window")
    func mistralWindowCache() throws {
        let window = 8
        let path = try TinyModels.write("mistral", variant: "-swa8", override: ["llama.attention.sliding_window": .uint32(UInt32(window))])
        let engine = try Engine(path: path, threads: 2)
        let prompt = (0..<60).map { 300 + ($0 * 11) % 200 }
        let session = try engine.makeSession(cache: CacheConfiguration(chunk: 16))
        try session.feed(prompt)
        let reference = try Self.lastLogits(engine.weights, prompt)
        let worst = zip(session.lastLogits, reference).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4, "session vs full cache: \(worst)")
        let report = session.cacheReport()
        #expect(report.slidingLayers == engine.configuration.layerCount && report.slidingWindow == window)
        // The window, up to 31 older entries (evicted 32 at a time), and one block while attended.
        let slack = BoundedLayerCache.slidingEvictionQuantum - 1
        #expect(report.entries <= window + slack && report.evictions == 0)
        let perEntry = engine.configuration.kvBytesPerEntry
        #expect(report.kvBytesPeak <= engine.configuration.layerCount * (window + slack + 16) * perEntry)
    }

    /// Evaluation compresses one prefill to several budgets and rolls the question back after
    /// each: sliding-window layers keep their window whatever the budget, and rolling back
    /// restores the entries their window dropped while the question was read.
    @Test("compress(budget:) and rollback leave sliding-window layers whole")
    func mistralWindowRollback() throws {
        let window = 8
        let path = try TinyModels.write("mistral", variant: "-swa8", override: ["llama.attention.sliding_window": .uint32(UInt32(window))])
        let engine = try Engine(path: path, threads: 2)
        let context = (0..<30).map { 300 + ($0 * 13) % 200 }, question = (0..<20).map { 310 + ($0 * 17) % 150 }
        let session = try engine.makeSession(cache: CacheConfiguration(policy: "h2o", budget: 16, mode: .prefillThenCompress, sinks: 1, window: 2, chunk: 16))
        try session.feed(context)
        try session.compress(budget: 4)
        #expect(session.layerCaches.allSatisfy { $0.count >= window }, "a budget below the window cut a sliding layer")
        let mark = session.checkpoint()
        try session.feed(question)
        let first = session.lastLogits
        session.rollback(to: mark)
        #expect(session.layerCaches.allSatisfy { $0.count >= window })
        try session.feed(question)
        #expect(session.lastLogits == first, "the question read after a rollback gave other logits")
    }
}
