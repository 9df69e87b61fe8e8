// IndexMem — evaluation. Apache-2.0.
//
// RULER's common words extraction (CWE): a numbered list of words where ten words appear many
// times and the others a few times each; the ten most frequent words must be named. Filler
// units are rare words (each appears `rareCount` times); the frequent words appear
// `commonCount` times at long lengths and fewer (never below 2 x rareCount) at short ones,
// as RULER shortens its lists for short contexts.

// MARK: - Common words

public struct CommonWordsTask: EvalTask {
    public let common: Int
    public let commonCount: Int
    public let rareCount: Int
    public init(common: Int = 10, commonCount: Int = 30, rareCount: Int = 3) {
        self.common = common
        self.commonCount = commonCount
        self.rareCount = rareCount
    }
    public var name: String { "common_words" }
    public var haystack: HaystackKind { .noise }
    public var maxNewTokens: Int { 96 }

    /// Words for the lists: adjective-noun pairs give thousands of distinct entries.
    static func vocabulary(_ n: Int, _ rng: inout SeededGenerator) -> [String] {
        var pool = Needles.nouns + Needles.adjectives
        pool.shuffle(using: &rng)
        var out = pool
        var i = 0
        while out.count < n {
            out.append(Needles.adjectives[i % Needles.adjectives.count] + Needles.nouns[(i / Needles.adjectives.count) % Needles.nouns.count])
            i += 1
        }
        return Array(out.prefix(n))
    }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let words = Self.vocabulary(common + filler, &rng)
        let frequent = Array(words.prefix(common))
        let repeats = min(commonCount, 2 * rareCount + filler / 8)
        var list = frequent.flatMap { Array(repeating: $0, count: repeats) }
        list += words.dropFirst(common).flatMap { Array(repeating: $0, count: rareCount) }
        list.shuffle(using: &rng)
        let numbered = list.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: " ")
        return TaskItem(
            context: "Below is a numbered list of words. Some words appear far more often than others; remember which.\n\n\(numbered)\n\n",
            question: "What are the \(common) most common words in the list above?",
            answers: frequent, answerPrefix: "The \(common) words that appear most often in the list are:", depth: nil)
    }
}
