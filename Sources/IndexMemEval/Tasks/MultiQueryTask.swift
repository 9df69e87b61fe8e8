// IndexMem — evaluation. Apache-2.0.
//
// RULER's multi-query needle: several needles with different keys; the question asks for all
// of their values at once.

// MARK: - Multi-query

public struct MultiQueryTask: EvalTask {
    public let queries: Int
    public init(queries: Int = 4) { self.queries = queries }
    public var name: String { "niah_multiquery" }
    public var haystack: HaystackKind { .prose }
    public var maxNewTokens: Int { 64 }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let (keys, values, needles, d) = Needles.numberNeedles(queries, depth: depth, &rng)
        let text = weave(source.units(filler, seed: seed), needles: needles)
        let list = keys.dropLast().joined(separator: ", ") + " and " + keys.last!
        return TaskItem(
            context: "Several secret numbers are hidden in the text below, each for a different key. Read carefully; you will be asked for some of them afterwards.\n\n\(text)\n\n",
            question: "What are the secret numbers for the \(list) in the text above?",
            answers: values, answerPrefix: "The secret numbers for the \(list) are:", depth: d)
    }
}
