// IndexMem — model tests. Apache-2.0.
//
// The engine against llama.cpp on the real default model: identical greedy tokens, logits
// within a small tolerance, perplexity within 1 %.

import Foundation
import IndexMem
import IndexMemGGUF
import IndexMemKernels
import IndexMemModel
import IndexMemTestSupport
import Testing

// MARK: - Shared model

/// One loaded model for the whole suite (loading is cheap: the file is memory-mapped).
final class LoadedModel: @unchecked Sendable {
    static let shared: LoadedModel? = try? LoadedModel()
    let weights: ModelWeights
    let pool = ThreadPool(threadCount: 2)

    init() throws {
        let path = try requireDefaultModel()
        let file = try GGUFFile(path: path)
        weights = try ModelWeights(file: file, configuration: try ModelConfiguration(gguf: file))
    }

    static func get() throws -> LoadedModel {
        if let shared { return shared }
        return try LoadedModel()  // rethrows the reason
    }
}

@Suite("llama.cpp oracle on SmolLM2-135M", .serialized)
struct OracleTests {
    /// Largest allowed |ours - llama.cpp| on a top logit. The engine reproduces llama.cpp's
    /// CPU arithmetic (activation quantization, f16 KV, ggml's reduction orders and vector
    /// exp), so logits agree to float rounding; the fixture stores 5 decimals.
    static let logitTolerance: Float = 1e-3

    @Test("greedy continuations and top logits match llama.cpp", arguments: 0..<8)
    func greedy(index: Int) throws {
        let fixture = try Fixtures.load(GreedyFixture.self, "greedy.json")
        try #require(index < fixture.prompts.count)
        let p = fixture.prompts[index]
        let model = try LoadedModel.get()
        let (generated, worst) = try OracleCheck.greedy(weights: model.weights, pool: model.pool, prompt: p, chunk: 64)
        #expect(generated == p.generated_ids, "prompt '\(p.name)': greedy tokens differ from llama.cpp")
        #expect(worst < Self.logitTolerance, "prompt '\(p.name)': max |logit difference| \(worst)")
        print("prompt \(p.name): max top-logit difference \(worst)")
    }

    @Test("perplexity of 4096 license-text tokens within 1 % of llama.cpp")
    func perplexity() throws {
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json")
        let model = try LoadedModel.get()
        let start = Date()
        let ppl = try OracleCheck.perplexity(weights: model.weights, pool: model.pool, ids: fixture.token_ids, chunk: 256)
        Self.f16Perplexity = ppl
        print("perplexity: ours \(ppl) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s), llama.cpp \(fixture.perplexity)")
        #expect(abs(ppl / fixture.perplexity - 1) < 0.01)
    }

    /// Our f16 perplexity once computed, so the q8_0 test need not compute it again when the
    /// suite runs whole (the suite is serialized: no two tests touch this at once).
    nonisolated(unsafe) static var f16Perplexity: Double?

    @Test("Q8KV: perplexity with q8_0 keys and values within 1 % of llama.cpp's (q8_0, flash attention) and of our f16")
    func perplexityQ8KV() throws {
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json")
        let q8 = try Fixtures.load(QuantizedKVPerplexityFixture.self, "perplexity_q8_0.json")
        #expect(q8.type_k == "q8_0" && q8.type_v == "q8_0" && q8.n_tokens == fixture.token_ids.count)
        #expect(q8.token_ids_sha256 == SHA256.hex(of: Array(fixture.token_ids.map(String.init).joined(separator: ",").utf8)),
                "the q8_0 fixture was made from other tokens than perplexity.json's")
        let model = try LoadedModel.get()
        let start = Date()
        let ours = try OracleCheck.perplexity(weights: model.weights, pool: model.pool, ids: fixture.token_ids, chunk: 256, entryType: .q8_0)
        let seconds = Date().timeIntervalSince(start)
        let f16 = try Self.f16Perplexity ?? OracleCheck.perplexity(weights: model.weights, pool: model.pool, ids: fixture.token_ids, chunk: 256)
        print("perplexity q8_0 KV: ours \(ours) (\(String(format: "%.1f", seconds)) s), llama.cpp \(q8.perplexity); ours f16 \(f16)")
        #expect(abs(ours / q8.perplexity - 1) < 0.01)
        #expect(abs(ours / f16 - 1) < 0.01)
    }
}

// MARK: - Shared checks

/// The comparisons every real-model oracle suite runs.
enum OracleCheck {
    /// Evaluates the prompt as one sequence (all positions' logits), then greedy steps one
    /// token at a time, stopping at the first token that differs from the fixture.
    /// - Returns: the greedy tokens and the largest |ours - llama.cpp| over the fixture's top logits.
    static func greedy(weights: ModelWeights, pool: ThreadPool, prompt p: GreedyFixture.Prompt, chunk: Int) throws -> ([Int], Float) {
        let transformer = Transformer(weights: weights, maxChunk: chunk, pool: pool)
        let caches = transformer.makeFullCaches(capacity: p.prompt_ids.count + p.generated_ids.count + 8)
        let vocab = weights.configuration.vocabularySize
        var sequence = p.prompt_ids
        // Logits of every position, so the fixture's positions can be checked.
        var logitsAt: [Int: [Float]] = [:]
        var all = [Float](repeating: 0, count: p.prompt_ids.count * vocab)
        try all.withUnsafeMutableBufferPointer {
            try transformer.forward(tokens: p.prompt_ids, startPosition: 0, caches: caches, logits: .all, into: $0.baseAddress)
        }
        let wanted = Set(p.top_logits.map(\.position))
        for i in 0..<p.prompt_ids.count where wanted.contains(i) || i == p.prompt_ids.count - 1 {
            logitsAt[i] = Array(all[(i * vocab)..<((i + 1) * vocab)])
        }
        var generated: [Int] = []
        var last = logitsAt[p.prompt_ids.count - 1]!
        while generated.count < p.generated_ids.count {
            let next = VectorMath.argmax(last, count: vocab)
            generated.append(next)
            // Stop comparing after a divergence: later positions would not be comparable.
            if next != p.generated_ids[generated.count - 1] { break }
            sequence.append(next)
            if generated.count == p.generated_ids.count { break }
            try last.withUnsafeMutableBufferPointer {
                try transformer.forward(tokens: [next], startPosition: sequence.count - 1, caches: caches, logits: .last, into: $0.baseAddress)
            }
            if wanted.contains(sequence.count - 1) { logitsAt[sequence.count - 1] = last }
        }
        return (generated, worstDifference(p.top_logits, logitsAt))
    }

    /// Largest |ours - reference| over the fixture's recorded top logits.
    static func worstDifference(_ tops: [GreedyFixture.TopLogits], _ logitsAt: [Int: [Float]]) -> Float {
        var worst: Float = 0
        for top in tops {
            guard let ours = logitsAt[top.position] else { continue }
            for (id, ref) in zip(top.ids, top.logits) { worst = max(worst, abs(ours[id] - ref)) }
        }
        return worst
    }

    /// Perplexity of `ids` in one context, evaluated `chunk` tokens at a time with all logits.
    static func perplexity(weights: ModelWeights, pool: ThreadPool, ids: [Int], chunk: Int, entryType: KVEntryType = .f16) throws -> Double {
        let transformer = Transformer(weights: weights, maxChunk: chunk, pool: pool)
        let caches = transformer.makeFullCaches(capacity: ids.count, entryType: entryType)
        let vocab = weights.configuration.vocabularySize
        var logits = [Float](repeating: 0, count: chunk * vocab)
        var nll = 0.0
        var count = 0
        var start = 0
        while start < ids.count {
            let piece = Array(ids[start..<min(ids.count, start + chunk)])
            try logits.withUnsafeMutableBufferPointer {
                try transformer.forward(tokens: piece, startPosition: start, caches: caches, logits: .all, into: $0.baseAddress)
            }
            logits.withUnsafeBufferPointer { all in
                for i in 0..<piece.count where start + i + 1 < ids.count {
                    let row = UnsafeBufferPointer(rebasing: all[(i * vocab)..<((i + 1) * vocab)])
                    let m = row.max()!
                    var sum = 0.0
                    for v in row { sum += exp(Double(v - m)) }
                    nll += Double(m) + log(sum) - Double(row[ids[start + i + 1]])
                    count += 1
                }
            }
            start += piece.count
        }
        return exp(nll / Double(count))
    }
}
