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
        let keys = Needles.keys(distractors + 1, &rng)
        let values = keys.map { _ in Needles.number(&rng) }
        let d = depth ?? Double(rng.below(1001)) / 1000
        var needles = [(text: "The secret number for the \(keys[0]) is \(values[0]).", depth: d)]
        for i in 1..<keys.count {
            needles.append(("The secret number for the \(keys[i]) is \(values[i]).", Double(rng.below(1001)) / 1000))
        }
        let text = weave(source.units(filler, seed: seed), needles: needles)
        return TaskItem(
            context: "Several secret numbers are hidden in the text below, each for a different key. Read carefully; you will be asked for one of them afterwards.\n\n\(text)\n\n",
            question: "What is the secret number for the \(keys[0]) in the text above?",
            answers: [values[0]], answerPrefix: "The secret number for the \(keys[0]) is", depth: d)
    }
}
