// IndexMem — evaluation. Apache-2.0.
//
// RULER's frequent words extraction (FWE): a "coded text" of made-up words whose frequencies
// follow a Zipf law (exponent 2); the three most frequent must be named. Filler units are
// coded words; the vocabulary grows with them up to `vocabularySize`.

// MARK: - Frequent words

public struct FrequentWordsTask: EvalTask {
    public let top: Int
    public let alpha: Double
    public let vocabularySize: Int
    public init(top: Int = 3, alpha: Double = 2, vocabularySize: Int = 400) {
        self.top = top
        self.alpha = alpha
        self.vocabularySize = vocabularySize
    }
    public var name: String { "frequent_words" }
    public var haystack: HaystackKind { .noise }
    public var maxNewTokens: Int { 40 }

    static func codedWord(_ rng: inout SeededGenerator) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return String((0..<(4 + rng.below(3))).map { _ in letters[rng.below(26)] })
    }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let size = max(top + 5, min(vocabularySize, filler / 5))
        var vocabulary: [String] = []
        while vocabulary.count < size {
            let w = Self.codedWord(&rng)
            if !vocabulary.contains(w) { vocabulary.append(w) }
        }
        // Counts proportional to 1 / rank^alpha; the top ranks strictly more frequent.
        let total = max(filler, 1)
        let weights = (1...size).map { 1 / pow(Double($0), alpha) }
        let sum = weights.reduce(0, +)
        var counts = weights.map { max(1, Int((Double(total) * $0 / sum).rounded())) }
        for r in 1..<min(top + 1, counts.count) where counts[r] >= counts[r - 1] { counts[r] = max(1, counts[r - 1] - 1) }
        var text = zip(vocabulary, counts).flatMap { Array(repeating: $0.0, count: $0.1) }
        text.shuffle(using: &rng)
        return TaskItem(
            context: "Read the following coded text and keep track of how often each coded word occurs.\n\n\(text.joined(separator: " "))\n\n",
            question: "Which \(top) coded words occur most often in the text above?",
            answers: Array(vocabulary.prefix(top)), answerPrefix: "The \(top) most frequent coded words are:", depth: nil)
    }
}

import Foundation
