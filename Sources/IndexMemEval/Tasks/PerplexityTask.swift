// IndexMem — evaluation. Apache-2.0.
//
// Perplexity under a cache setting: a natural-prose text of exactly `length` tokens (from
// the sample's seed) is read in chunks with the bounded cache evicting as it goes; every
// token after the first is predicted from what the cache kept. Only bounded mode applies.

import Foundation
import IndexMem

// MARK: - Perplexity

public enum PerplexityTask {
    public static let name = "perplexity"

    /// `length` tokens of prose for a seed (no template, BOS if the vocabulary adds it).
    public static func tokens(length: Int, seed: UInt64, haystack: Haystack, engine: Engine) -> [Int] {
        var units = 64
        while true {
            let text = haystack.units(units, seed: seed).joined(separator: " ")
            let ids = engine.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
            if ids.count >= length { return Array(ids.prefix(length)) }
            units *= 2
        }
    }

    /// Mean negative log-likelihood of `tokens[1...]` read chunk by chunk through `session`.
    public static func meanNLL(tokens: [Int], session: Session, chunk: Int) throws -> Double {
        let vocab = session.engine.configuration.vocabularySize
        var total = 0.0
        var count = 0
        var previousLast: [Float]? = nil
        var start = 0
        while start < tokens.count {
            let piece = Array(tokens[start..<min(tokens.count, start + chunk)])
            if let previousLast {
                total += nll(previousLast[...], target: piece[0])
                count += 1
            }
            let logits = try session.feedReturningAllLogits(piece)
            for i in 0..<(piece.count - 1) {
                total += nll(logits[(i * vocab)..<((i + 1) * vocab)], target: piece[i + 1])
                count += 1
            }
            previousLast = Array(logits[((piece.count - 1) * vocab)...])
            start += piece.count
        }
        return count > 0 ? total / Double(count) : 0
    }

    static func nll(_ row: ArraySlice<Float>, target: Int) -> Double {
        let m = row.max() ?? 0
        var sum = 0.0
        for v in row { sum += exp(Double(v - m)) }
        return Double(m) + log(sum) - Double(row[row.startIndex + target])
    }
}
