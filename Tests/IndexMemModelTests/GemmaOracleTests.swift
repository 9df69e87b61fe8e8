// IndexMem — model tests. Apache-2.0.
//
// The engine against llama.cpp on Gemma 3 270M (Q4_K_M): sliding-window and global layers,
// query/key norms, post norms, GELU feed-forward, embedding scaling, SentencePiece prompts
// with BOS. Fixtures in Tests/Fixtures/gemma3 (scripts/make_fixtures.py --profile gemma3).
// The engine reproduces llama.cpp's CPU arithmetic here too (repacked Q4_K products, the
// tiled K-quant matmul, ggml's GELU table), so the logits agree to float rounding.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemGGUF
import IndexMemKernels
import IndexMemModel
import IndexMemTestSupport
import Testing

/// Gemma 3 270M for the whole suite (memory-mapped).
final class LoadedGemma: @unchecked Sendable {
    static let shared: Result<LoadedGemma, any Error> = Result { try LoadedGemma() }
    let engine: Engine
    var weights: ModelWeights { engine.weights }
    let pool = ThreadPool(threadCount: 2)

    init() throws {
        engine = try Engine(path: try requireGemmaModel(), threads: 2)
    }

    static func get() throws -> LoadedGemma { try shared.get() }
}

@Suite("llama.cpp oracle on Gemma 3 270M", .serialized)
struct GemmaOracleTests {
    static let logitTolerance: Float = 1e-3

    @Test("the configuration read from the GGUF")
    func configuration() throws {
        let c = try LoadedGemma.get().engine.configuration
        #expect(c.architecture == "gemma3")
        #expect(c.slidingWindow == 512)
        // Every sixth layer is global (5, 11, 17); the others slide, with RoPE base 10000.
        #expect((0..<18).filter { c.slidingWindow(layer: $0) == nil } == [5, 11, 17])
        #expect(c.ropeBase == 1_000_000 && c.slidingRopeBase == 10_000)
        #expect(c.embeddingScale == Float(640).squareRoot() && c.queryScale == 0.0625 && c.attentionScale == 1)
        #expect(c.queryKeyNorm && c.postNorms && c.feedForwardActivation == .gelu && c.ropeHalves)
        #expect(try LoadedGemma.get().engine.chatTemplate?.kind == .gemma)
    }

    @Test("greedy continuations and top logits match llama.cpp", arguments: 0..<8)
    func greedy(index: Int) throws {
        let fixture = try Fixtures.load(GreedyFixture.self, "greedy.json", model: "gemma3")
        try #require(index < fixture.prompts.count)
        let p = fixture.prompts[index]
        let model = try LoadedGemma.get()
        let (generated, worst) = try OracleCheck.greedy(weights: model.weights, pool: model.pool, prompt: p, chunk: 512)
        #expect(generated == p.generated_ids, "prompt '\(p.name)': greedy tokens differ from llama.cpp")
        #expect(worst < Self.logitTolerance, "prompt '\(p.name)': max |logit difference| \(worst)")
        print("gemma prompt \(p.name): max top-logit difference \(worst), smallest greedy margin \(p.greedy_margins.min() ?? 0)")
    }

    @Test("perplexity of 8192 license-text tokens within 1 % of llama.cpp")
    func perplexity() throws {
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json", model: "gemma3")
        #expect(fixture.n_tokens >= 8192)
        let model = try LoadedGemma.get()
        let ppl = try OracleCheck.perplexity(weights: model.weights, pool: model.pool, ids: fixture.token_ids, chunk: 512)
        print("gemma perplexity over \(fixture.n_tokens) tokens: ours \(ppl), llama.cpp \(fixture.perplexity)")
        #expect(abs(ppl / fixture.perplexity - 1) < 0.01)
    }

    /// On real weights: a sliding layer's attention output at position p changes with the
    /// token at p - 511 and not with any before it; a global layer's changes with all of them.
    @Test("sliding-window layers see exactly the last 512 positions")
    func slidingWindow() throws {
        let model = try LoadedGemma.get()
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json", model: "gemma3")
        let base = Array(fixture.token_ids.prefix(600))
        func attention(_ tokens: [Int]) throws -> [Int: [Float]] {
            let t = Transformer(weights: model.weights, maxChunk: 512, pool: model.pool)
            let caches = t.makeFullCaches(capacity: tokens.count)
            var out: [Int: [Float]] = [:]
            t.observer = { layer, name, values, rows, columns in
                if (layer == 0 || layer == 5) && name == "kqv_out" && rows == tokens.count - 512 {
                    out[layer] = Array(UnsafeBufferPointer(start: values + (rows - 1) * columns, count: columns))
                }
            }
            try t.forward(tokens: tokens, startPosition: 0, caches: caches, logits: .none, into: nil)
            return out
        }
        let reference = try attention(base)
        let last = base.count - 1  // 599: sees 88...599 on sliding layers
        var far = base
        far[last - 512] = 1000     // position 87
        var near = base
        near[last - 511] = 1000    // position 88
        let farOut = try attention(far), nearOut = try attention(near)
        #expect(farOut[0] == reference[0], "a sliding layer saw position \(last - 512)")
        #expect(nearOut[0] != reference[0], "a sliding layer did not see position \(last - 511)")
        #expect(farOut[5] != reference[5], "the global layer did not see position \(last - 512)")
    }

    /// 16384 tokens through a session (sliding-window layers keep only their window), then
    /// greedy decoding: the logits agree with llama.cpp's (full-size SWA cache, its default)
    /// to float noise. This needs the one-token sums in llama.cpp's order: evicting one
    /// window entry per decoded token instead of 32 at a time drifted by 0.44 here.
    @Test("a 16K-token context: top logits and greedy tokens match llama.cpp")
    func longContext() throws {
        let fixture = try Fixtures.load(LongFixture.self, "long.json", model: "gemma3")
        #expect(fixture.n_tokens >= 16384)
        let model = try LoadedGemma.get()
        let session = try model.engine.makeSession(cache: CacheConfiguration(chunk: 512))
        try session.feed(fixture.token_ids)
        var logitsAt: [Int: [Float]] = [fixture.n_tokens - 1: session.lastLogits]
        var generated: [Int] = []
        for g in 0..<fixture.generated_ids.count {
            let next = VectorMath.argmax(session.lastLogits, count: session.lastLogits.count)
            generated.append(next)
            if next != fixture.generated_ids[g] || g == fixture.generated_ids.count - 1 { break }
            try session.feed([next])
            logitsAt[fixture.n_tokens + g] = session.lastLogits
        }
        let worst = OracleCheck.worstDifference(fixture.top_logits, logitsAt)
        let report = session.cacheReport()
        print("gemma 16K: max top-logit difference \(worst), greedy margins \(fixture.greedy_margins), kv peak \(report.kvBytesPeak) B (full cache \(report.kvBytesFullCache) B)")
        #expect(generated == fixture.generated_ids)
        #expect(worst < Self.logitTolerance, "max |logit difference| \(worst)")
        // 15 sliding layers hold their window (+ up to 31 entries and one chunk) only.
        #expect(report.slidingLayers == 15 && report.slidingWindow == 512)
        let perEntry = model.engine.configuration.kvBytesPerEntry
        let slidingPeak = 512 + BoundedLayerCache.slidingEvictionQuantum - 1 + 512
        let expected = (3 * (fixture.n_tokens + fixture.generated_ids.count) + 15 * slidingPeak) * perEntry
        #expect(report.kvBytesPeak <= expected, "kv peak \(report.kvBytesPeak) > \(expected)")
    }

    /// The server reserves `kvBytesBound` before it admits a request: on Gemma the sliding
    /// layers hold their window (more than a small budget), the budget bounds the 3 global
    /// layers (a pyramid over those 3), and the bound must cover both.
    @Test("a session never holds more KV bytes than kvBytesBound, sliding and global layers", arguments: [
        CacheConfiguration(policy: "snapkv", budget: 128),
        CacheConfiguration(policy: "pyramid", budget: 160),
        CacheConfiguration(policy: "h2o", budget: 128, mode: .prefillThenCompress),
        CacheConfiguration(),
    ])
    func reservationBound(_ cache: CacheConfiguration) throws {
        let model = try LoadedGemma.get()
        let engine = model.engine
        let prompt = engine.tokenize(String(repeating: "Rivers flow to the sea, and the sea gives rain back to rivers. ", count: 90))
        #expect(prompt.count > BoundedLayerCache.slidingCapacity(window: 512, chunk: cache.chunk), "the prompt must overflow the windows")
        let maxTokens = 8
        let bound = try cache.kvBytesBound(model: engine.configuration, promptTokens: prompt.count, totalTokens: prompt.count + maxTokens)
        let session = try engine.makeSession(cache: cache)
        try session.feed(prompt)
        if cache.mode == .prefillThenCompress { session.compress() }
        _ = try session.generate(prompt: [], options: GenerationOptions(maxTokens: maxTokens, stopAtEndOfTurn: false))
        #expect(session.kvBytesPeak <= bound, "\(cache.policy): peak \(session.kvBytesPeak) > reservation \(bound)")
        #expect(bound < (prompt.count + maxTokens) * engine.configuration.kvBytesPerToken, "the windows make the bound smaller than full caches")
    }
}
