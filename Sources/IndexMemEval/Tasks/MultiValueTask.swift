// IndexMem — evaluation. Apache-2.0.
//
// RULER's multi-value needle: one key has several values scattered through the haystack; all
// of them must be returned.

// MARK: - Multi-value

public struct MultiValueTask: EvalTask {
    public let values: Int
    public init(values: Int = 4) { self.values = values }
    public var name: String { "niah_multivalue" }
    public var haystack: HaystackKind { .prose }
    public var maxNewTokens: Int { 64 }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let key = Needles.key(&rng)
        var numbers: [String] = []
        while numbers.count < values {
            let n = Needles.number(&rng)
            if !numbers.contains(n) { numbers.append(n) }
        }
        let d = depth ?? Double(rng.below(1001)) / 1000
        var needles = [(text: "One of the secret numbers for the \(key) is \(numbers[0]).", depth: d)]
        for n in numbers.dropFirst() {
            needles.append(("One of the secret numbers for the \(key) is \(n).", Double(rng.below(1001)) / 1000))
        }
        let text = weave(source.units(filler, seed: seed), needles: needles)
        return TaskItem(
            context: "Some secret numbers are hidden in the text below. Read carefully; you will be asked for them afterwards.\n\n\(text)\n\n",
            question: "What are all the secret numbers for the \(key) in the text above?",
            answers: numbers, answerPrefix: "The secret numbers for the \(key) are:", depth: d)
    }
}
