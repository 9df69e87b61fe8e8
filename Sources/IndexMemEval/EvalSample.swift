// IndexMem — evaluation. Apache-2.0.

// MARK: - Samples

/// One evaluation item: a long context, then a question asked after it (so a cache
/// compressed before the question has not seen it, as in kvpress), and the strings a
/// correct answer contains.
public struct EvalSample: Sendable, Codable, Equatable {
    /// Stable identifier (task, length, sample index and seed for generated samples).
    public var id: String
    public var task: String
    /// The context: instructions and the haystack.
    public var context: String
    /// The question, asked after the context.
    public var question: String
    /// Every expected answer; the score is the fraction found in the output.
    public var answers: [String]
    /// Text the assistant's answer starts with (it is part of the prompt).
    public var answerPrefix: String
    public var maxNewTokens: Int
    /// Where the needle sits in the haystack (0 = start, 1 = end), for needle tasks.
    public var depth: Double?

    public init(id: String, task: String, context: String, question: String, answers: [String],
                answerPrefix: String = "", maxNewTokens: Int = 32, depth: Double? = nil) {
        self.id = id
        self.task = task
        self.context = context
        self.question = question
        self.answers = answers
        self.answerPrefix = answerPrefix
        self.maxNewTokens = maxNewTokens
        self.depth = depth
    }
}

// MARK: - Scoring

public enum Scoring {
    /// RULER's `string_match_all`: the fraction of expected answers that occur in the
    /// output, case-insensitively. An empty answer list scores 0.
    public static func stringMatchAll(output: String, answers: [String]) -> Double {
        guard !answers.isEmpty else { return 0 }
        let lower = output.lowercased()
        let found = answers.filter { lower.contains($0.lowercased()) }.count
        return Double(found) / Double(answers.count)
    }
}
