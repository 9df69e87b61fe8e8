// IndexMem — model tests. Apache-2.0.
//
// The bounded cache on the real default model: with a budget the context never reaches,
// every policy in both modes gives the full cache's logits bit for bit; with a small budget
// the cache's own accounting stays within (budget + chunk) entries per layer and KV head.

import Foundation
import IndexMem
import IndexMemTestSupport
import Testing

enum SharedEngine {
    static let loaded: Result<Engine, any Error> = Result { try Engine(path: try requireDefaultModel(), threads: 2) }
    static func get() throws -> Engine { try loaded.get() }

    /// The first `n` tokens of Debian's license texts.
    static func licenseTokens(_ n: Int) throws -> [Int] {
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json")
        return Array(fixture.token_ids.prefix(n))
    }
}

@Suite("Bounded sessions on SmolLM2", .serialized)
struct BoundedSessionTests {
    static let policies = ["window", "h2o", "tova", "snapkv", "pyramid", "knorm", "random"]

    /// Logits after the prompt and after each of `steps` greedy decode steps.
    static func trace(_ engine: Engine, _ configuration: CacheConfiguration, prompt: [Int], steps: Int) throws -> [[Float]] {
        let session = try engine.makeSession(cache: configuration)
        try session.feed(prompt)
        if configuration.mode == .prefillThenCompress { session.compress() }
        var out = [session.lastLogits]
        for _ in 0..<steps {
            let next = session.lastLogits.indices.max { session.lastLogits[$0] < session.lastLogits[$1] }!
            try session.feed([next])
            out.append(session.lastLogits)
        }
        return out
    }

    @Test("budget >= context: logits identical to the full cache", arguments: policies, CacheConfiguration.Mode.allCases)
    func noEvictionMatchesFull(policy: String, mode: CacheConfiguration.Mode) throws {
        let engine = try SharedEngine.get()
        let prompt = try SharedEngine.licenseTokens(160)
        let full = try Self.trace(engine, CacheConfiguration(chunk: 64), prompt: prompt, steps: 3)
        let bounded = try Self.trace(engine, CacheConfiguration(policy: policy, budget: 4096, mode: mode, chunk: 64),
                                     prompt: prompt, steps: 3)
        #expect(full == bounded)
    }

    @Test("a small budget holds: entries <= budget, peak KV bytes <= (budget + chunk) entries", arguments: policies)
    func budgetHolds(policy: String) throws {
        let engine = try SharedEngine.get()
        let c = engine.configuration
        let configuration = CacheConfiguration(policy: policy, budget: 96, sinks: 4, window: 32, chunk: 64)
        let session = try engine.makeSession(cache: configuration)
        let result = try session.generate(prompt: try SharedEngine.licenseTokens(400),
                                          options: GenerationOptions(maxTokens: 8, stopAtEndOfTurn: false))
        let report = result.cache
        let entryBytes = c.kvHeads * c.headDimension * 2 * 2
        let bound = (policy == "pyramid" ? report.entries : 96) + 64
        #expect(report.kvBytesPeak <= c.layerCount * bound * entryBytes)
        #expect(policy == "pyramid" || report.entries <= 96)
        #expect(report.kvBytes < report.kvBytesFullCache / 3)
        #expect(report.evictions > 0)
        #expect(result.generatedTokens.count == 8)
    }

    @Test("invalid cache settings are refused with a message naming the problem")
    func invalidSettings() throws {
        let engine = try SharedEngine.get()
        let cases: [(CacheConfiguration, String)] = [
            (CacheConfiguration(policy: "lru", budget: 100), "unknown policy 'lru'"),
            (CacheConfiguration(policy: "h2o", budget: 50, sinks: 4, window: 64), "smaller than sinks"),
            (CacheConfiguration(policy: "full", budget: 100), "keeps every entry"),
            (CacheConfiguration(policy: "h2o"), "give a budget"),
            (CacheConfiguration(policy: "h2o", budget: 100, ratio: 0.5), "either a budget or a ratio"),
            (CacheConfiguration(policy: "snapkv:windw=8", budget: 100), "has no option 'windw'"),
            (CacheConfiguration(policy: "snapkv:window=0", budget: 100), "window=0 must be"),
        ]
        for (configuration, message) in cases {
            do {
                _ = try engine.makeSession(cache: configuration)
                Issue.record("\(configuration.policy) was accepted")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test("a ratio budget is a fraction of the first block fed")
    func ratio() throws {
        let engine = try SharedEngine.get()
        let session = try engine.makeSession(cache: CacheConfiguration(policy: "snapkv", ratio: 0.25, window: 32, chunk: 64))
        try session.feed(try SharedEngine.licenseTokens(400))
        #expect(session.budget == 100)
        #expect(session.cacheReport().entries == 100)
    }
}
