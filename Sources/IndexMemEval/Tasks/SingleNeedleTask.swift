// IndexMem — evaluation. Apache-2.0.
//
// RULER's single needle in a haystack: one key/value sentence hidden at a depth; the question
// asks for the value. Needles are seven-digit numbers, words or UUIDs.

// MARK: - Single needle

public struct SingleNeedleTask: EvalTask {
    public enum Needle: String, Sendable { case number, word, uuid }

    public let name: String
    public let needle: Needle
    public let haystack: HaystackKind
    public var maxNewTokens: Int { needle == .uuid ? 40 : 24 }

    public init(name: String, needle: Needle, haystack: HaystackKind) {
        self.name = name
        self.needle = needle
        self.haystack = haystack
    }

    var noun: String {
        switch needle {
        case .number: return "number"
        case .word: return "word"
        case .uuid: return "code"
        }
    }

    static func value(_ needle: Needle, _ rng: inout SeededGenerator) -> String {
        switch needle {
        case .number: return Needles.number(&rng)
        case .word: return Needles.word(&rng)
        case .uuid: return Needles.uuid(&rng)
        }
    }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        let key = Needles.key(&rng)
        let value = Self.value(needle, &rng)
        let d = depth ?? Double(rng.below(1001)) / 1000
        let sentence = "The secret \(noun) for the \(key) is \(value)."
        let text = weave(source.units(filler, seed: seed), needles: [(sentence, d)])
        return TaskItem(
            context: "A secret \(noun) is hidden somewhere in the text below. Read it carefully; you will be asked for it afterwards.\n\n\(text)\n\n",
            question: "What is the secret \(noun) for the \(key) in the text above?",
            answers: [value], answerPrefix: "The secret \(noun) for the \(key) is", depth: d)
    }
}
