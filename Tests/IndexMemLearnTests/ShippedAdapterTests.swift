// IndexMem — learning tests. Apache-2.0.
//
// The adapters shipped in adapters/ (SmolLM2, the default model, and Gemma 3): each loads by
// default for `--policy indexmem`, matches its model, keeps the KV budget, and with a budget
// the context never reaches computes the full cache's logits bit for bit.

import Foundation
import IndexMem
import IndexMemTestSupport
import Testing

@Suite("The shipped adapters", .serialized)
struct ShippedAdapterTests {
    static let adapter = TestPaths.repositoryRoot + "/adapters/SmolLM2-135M-Instruct.Q4_1.indexmem.safetensors"

    @Test("loads from the default path, matches the model, holds both variants")
    func loads() throws {
        let engine = try Engine(path: try requireDefaultModel(), threads: 2)
        #expect(IndexerAdapterFile.defaultPath(modelPath: engine.path) == Self.adapter
                || FileManager.default.fileExists(atPath: IndexerAdapterFile.defaultPath(modelPath: engine.path)))
        let indexer = try engine.indexer(adapter: Self.adapter)
        #expect(indexer.metadata["model_sha256"] == engine.sha256)
        #expect(indexer.parameters.has(.writeTime) && indexer.parameters.has(.queryAware))
        #expect(indexer.parameters.bytes < 8 << 20, "an adapter stays a few MB")
    }

    @Test("budget never reached: identical logits; small budget: the cache stays within budget + chunk",
          arguments: ["indexmem", "indexmem-static"])
    func boundedAndExact(policy: String) throws {
        let engine = try Engine(path: try requireDefaultModel(), threads: 2)
        let prompt = Array(engine.tokenize(String(repeating: "The river runs past the old mill. ", count: 30)).prefix(200))
        let full = try engine.makeSession(cache: CacheConfiguration(chunk: 64))
        let learned = try engine.makeSession(cache: CacheConfiguration(policy: policy, budget: 2048, chunk: 64, adapter: Self.adapter))
        try full.feed(prompt)
        try learned.feed(prompt)
        #expect(full.lastLogits == learned.lastLogits)
        let small = try engine.makeSession(cache: CacheConfiguration(policy: policy, budget: 96, chunk: 64, adapter: Self.adapter))
        try small.feed(prompt)
        for token in [504, 1694, 2120] { try small.feed([token]) }
        let report = small.cacheReport()
        #expect(report.entries <= 96 + 64)
        #expect(report.kvBytesPeak <= engine.configuration.layerCount * engine.configuration.kvHeads * (96 + 64) * engine.configuration.headDimension * 4)
        #expect(report.indexerBytes > 0 && report.evictions > 0)
    }

    @Test("composes with pyramid budgets")
    func pyramid() throws {
        let engine = try Engine(path: try requireDefaultModel(), threads: 2)
        let prompt = Array(engine.tokenize(String(repeating: "The river runs past the old mill. ", count: 30)).prefix(200))
        let session = try engine.makeSession(cache: CacheConfiguration(policy: "pyramid:scorer=indexmem-query", budget: 96, chunk: 64,
                                                                       adapter: Self.adapter))
        try session.feed(prompt)
        let report = session.cacheReport()
        #expect(report.policy.hasPrefix("pyramid") && report.evictions > 0 && report.indexerBytes > 0)
        #expect(session.layerCaches.map(\.count).max()! > session.layerCaches.map(\.count).min()!, "layer budgets differ")
    }

    static let gemmaAdapter = TestPaths.repositoryRoot + "/adapters/gemma-3-270m-Q4_K_M.indexmem.safetensors"

    @Test("Gemma 3: the adapter covers its 3 global layers only; budgets bind there; an unreached budget is exact")
    func gemma() throws {
        let engine = try Engine(path: try requireGemmaModel(), threads: 2)
        let indexer = try engine.indexer(adapter: Self.gemmaAdapter)
        #expect(indexer.metadata["model_sha256"] == engine.sha256)
        #expect(indexer.parameters.layerCount == engine.configuration.globalLayers.count)
        #expect(engine.configuration.globalLayers.count == 3)
        #expect(indexer.parameters.has(.writeTime) && indexer.parameters.has(.queryAware))
        let prompt = Array(engine.tokenize(String(repeating: "The river runs past the old mill. ", count: 30)).prefix(200))
        let full = try engine.makeSession(cache: CacheConfiguration(chunk: 64))
        let learned = try engine.makeSession(cache: CacheConfiguration(policy: "indexmem", budget: 2048, chunk: 64, adapter: Self.gemmaAdapter))
        try full.feed(prompt)
        try learned.feed(prompt)
        #expect(full.lastLogits == learned.lastLogits)
        let small = try engine.makeSession(cache: CacheConfiguration(policy: "indexmem", budget: 96, chunk: 64, adapter: Self.gemmaAdapter))
        try small.feed(prompt)
        let report = small.cacheReport()
        #expect(report.budgetedLayers == 3 && report.evictions > 0 && report.indexerBytes > 0)
        // The SmolLM2 adapter is refused by Gemma, naming both models.
        #expect(throws: (any Error).self) { _ = try engine.indexer(adapter: Self.adapter) }
    }
}
