// IndexMem — evaluation. Apache-2.0.
//
// RULER's variable tracking: a value is assigned to one variable, then passed along a chain
// of assignments spread through a noise haystack; every variable of the chain must be named.

// MARK: - Variable tracking

public struct VariableTrackingTask: EvalTask {
    public let hops: Int
    public init(hops: Int = 4) { self.hops = hops }
    public var name: String { "variable_tracking" }
    public var haystack: HaystackKind { .noise }
    public var maxNewTokens: Int { 32 }

    static func variableName(_ rng: inout SeededGenerator) -> String {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return String((0..<5).map { _ in letters[rng.below(26)] })
    }

    public func build(seed: UInt64, filler: Int, haystack source: Haystack, depth: Double?) -> TaskItem {
        var rng = SeededGenerator(seed: seed)
        var names: [String] = []
        while names.count < hops + 1 {
            let n = Self.variableName(&rng)
            if !names.contains(n) { names.append(n) }
        }
        let value = String(10_000 + rng.below(90_000))
        let start = depth ?? Double(rng.below(501)) / 1000
        var needles = [(text: "VAR \(names[0]) = \(value).", depth: start)]
        for i in 1..<names.count {
            // Each assignment comes after the one it copies.
            needles.append(("VAR \(names[i]) = VAR \(names[i - 1]).", start + (1 - start) * Double(i) / Double(names.count)))
        }
        let text = weave(source.units(filler, seed: seed), needles: needles)
        return TaskItem(
            context: "Memorize and track the chain of variable assignments hidden in the following text.\n\n\(text)\n\n",
            question: "Which variables in the text above are assigned the value \(value), directly or through other variables? List them all.",
            answers: names, answerPrefix: "The variables assigned the value \(value) are:", depth: start)
    }
}
