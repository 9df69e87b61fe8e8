// IndexMem — model tests. Apache-2.0.

import Foundation
import IndexMemTestSupport

// MARK: - llama.cpp reference fixtures (scripts/make_fixtures.py)

struct GreedyFixture: Decodable {
    struct Prompt: Decodable {
        let name: String
        let prompt: String
        let special: Bool
        let prompt_ids: [Int]
        let generated_ids: [Int]
        let greedy_margins: [Double]
        let top_logits: [TopLogits]
    }
    struct TopLogits: Decodable {
        let position: Int
        let ids: [Int]
        let logits: [Float]
    }
    let prompts: [Prompt]
}

struct PerplexityFixture: Decodable {
    let files: [String]
    let separator: String
    let n_tokens: Int
    let token_ids: [Int]
    let perplexity: Double
    let mean_nll: Double
}

struct LongFixture: Decodable {
    let n_tokens: Int
    let token_ids: [Int]
    let generated_ids: [Int]
    let greedy_margins: [Double]
    let top_logits: [GreedyFixture.TopLogits]
}

enum Fixtures {
    /// `Tests/Fixtures/<model>/<name>` (model `smollm2` or `gemma3`).
    static func load<T: Decodable>(_ type: T.Type, _ name: String, model: String = "smollm2") throws -> T {
        let url = URL(fileURLWithPath: TestPaths.fixtures).appendingPathComponent("\(model)/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }
}
