// IndexMem — model tests. Apache-2.0.
//
// The engine against llama.cpp on the real default model: identical greedy tokens, logits
// within a small tolerance, perplexity within 1 %.

import Foundation
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
        let transformer = Transformer(weights: model.weights, maxChunk: 64, pool: model.pool)
        let caches = transformer.makeFullCaches(capacity: 512)
        let vocab = model.weights.configuration.vocabularySize
        var sequence = p.prompt_ids
        // Logits of every position, so the fixture's positions can be checked.
        var logitsAt: [Int: [Float]] = [:]
        var all = [Float](repeating: 0, count: p.prompt_ids.count * vocab)
        try all.withUnsafeMutableBufferPointer {
            try transformer.forward(tokens: p.prompt_ids, startPosition: 0, caches: caches, logits: .all, into: $0.baseAddress)
        }
        for i in 0..<p.prompt_ids.count { logitsAt[i] = Array(all[(i * vocab)..<((i + 1) * vocab)]) }
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
            logitsAt[sequence.count - 1] = last
        }
        #expect(generated == p.generated_ids, "prompt '\(p.name)': greedy tokens differ from llama.cpp")
        var worst: Float = 0
        for top in p.top_logits {
            guard let ours = logitsAt[top.position] else { continue }
            for (id, ref) in zip(top.ids, top.logits) { worst = max(worst, abs(ours[id] - ref)) }
        }
        #expect(worst < Self.logitTolerance, "prompt '\(p.name)': max |logit difference| \(worst)")
        print("prompt \(p.name): max top-logit difference \(worst)")
    }

    @Test("perplexity of 4096 license-text tokens within 1 % of llama.cpp")
    func perplexity() throws {
        let fixture = try Fixtures.load(PerplexityFixture.self, "perplexity.json")
        let model = try LoadedModel.get()
        let transformer = Transformer(weights: model.weights, maxChunk: 256, pool: model.pool)
        let caches = transformer.makeFullCaches(capacity: fixture.n_tokens)
        let vocab = model.weights.configuration.vocabularySize
        let chunk = 256
        var logits = [Float](repeating: 0, count: chunk * vocab)
        var nll = 0.0
        var count = 0
        var start = 0
        let ids = fixture.token_ids
        while start < ids.count {
            let piece = Array(ids[start..<min(ids.count, start + chunk)])
            try logits.withUnsafeMutableBufferPointer {
                try transformer.forward(tokens: piece, startPosition: start, caches: caches, logits: .all, into: $0.baseAddress)
            }
            for i in 0..<piece.count where start + i + 1 < ids.count {
                let row = Array(logits[(i * vocab)..<((i + 1) * vocab)])
                let m = row.max()!
                let lse = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                nll += lse - Double(row[ids[start + i + 1]])
                count += 1
            }
            start += piece.count
        }
        let ppl = exp(nll / Double(count))
        print("perplexity: ours \(ppl), llama.cpp \(fixture.perplexity)")
        #expect(abs(ppl / fixture.perplexity - 1) < 0.01)
    }
}
