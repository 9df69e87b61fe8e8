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

/// llama.cpp's perplexity over `perplexity.json`'s tokens with q8_0 keys and values (flash
/// attention, which llama.cpp needs for a quantized V); the tokens are named by their hash.
struct QuantizedKVPerplexityFixture: Decodable {
    let n_tokens: Int
    /// sha256 of the token ids written as decimal numbers joined by ",".
    let token_ids_sha256: String
    let type_k: String
    let type_v: String
    let flash_attn: Bool
    let perplexity: Double
    let mean_nll: Double
    /// The same run with f16 K and V (flash attention), for comparison.
    let perplexity_f16_flash_attn: Double?
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
