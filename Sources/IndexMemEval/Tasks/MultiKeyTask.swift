// IndexMem — evaluation. Apache-2.0.
//
// RULER's multi-key needle: the asked-for needle hides among distractor needles with other
// keys of the same form; only the value of the asked key counts.

// MARK: - Multi-key

public struct MultiKeyTask: EvalTask {
    public let distractors: Int
    public init(distractors: Int = 3) { self.distractors = distractors }
    public var name: String { "niah_multikey" }
    public var haystack: HaystackKind { .prose }
    public var maxNewTokens: Int { 24 }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let (keys, values, needles, d) = Needles.numberNeedles(distractors + 1, depth: depth, &rng)
        let text = weave(source.units(filler, seed: seed), needles: needles)
        return TaskItem(
            context: "Several secret numbers are hidden in the text below, each for a different key. Read carefully; you will be asked for one of them afterwards.\n\n\(text)\n\n",
            question: "What is the secret number for the \(keys[0]) in the text above?",
            answers: [values[0]], answerPrefix: "The secret number for the \(keys[0]) is", depth: d)
    }
}
