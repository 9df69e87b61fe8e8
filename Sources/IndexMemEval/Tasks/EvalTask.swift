// IndexMem — evaluation. Apache-2.0.
//
// RULER-style synthetic tasks (Hsieh et al. 2024, arXiv:2404.06654), written here with our
// own wording. A task builds an item from a seed and an amount of filler; `SampleBuilder`
// chooses the filler so the whole prompt hits the requested length exactly in the model's
// own tokens.

// MARK: - Task protocol

/// An item a task builds before its length is fitted.
public struct TaskItem: Sendable {
    /// Instructions and haystack (everything before the question).
    public var context: String
    public var question: String
    public var answers: [String]
    public var answerPrefix: String
    public var depth: Double?
}

public protocol EvalTask: Sendable {
    var name: String { get }
    /// The haystack the task reads filler from.
    var haystack: HaystackKind { get }
    var maxNewTokens: Int { get }
    /// The item for `seed` with `filler` units of filler (more units make a longer context).
    /// - Parameter depth: where to put the needle (0...1); nil draws it from the seed.
    func build(seed: UInt64, filler: Int, haystack: Haystack, depth: Double?) -> TaskItem
}

// MARK: - Registry

public enum TaskRegistry {
    public static let all: [any EvalTask] = [
        SingleNeedleTask(name: "niah_single_noise", needle: .number, haystack: .noise),
        SingleNeedleTask(name: "niah_single_prose", needle: .number, haystack: .prose),
        SingleNeedleTask(name: "niah_single_word", needle: .word, haystack: .prose),
        SingleNeedleTask(name: "niah_single_uuid", needle: .uuid, haystack: .prose),
        MultiKeyTask(),
        MultiValueTask(),
        MultiQueryTask(),
        VariableTrackingTask(),
        CommonWordsTask(),
        FrequentWordsTask(),
    ]

    public static var names: [String] { all.map(\.name) }

    public static func task(named name: String) throws -> any EvalTask {
        guard let t = all.first(where: { $0.name == name }) else { throw EvalError.unknownTask(name, available: names) }
        return t
    }
}

// MARK: - Shared pieces

/// Random values and names for needles, drawn from a seeded generator.
enum Needles {
    /// Nouns and adjectives for needle keys and word needles (our own list).
    static let adjectives = [
        "amber", "ancient", "bitter", "bold", "brave", "bright", "calm", "clever", "cold", "crimson", "curious", "dark",
        "distant", "eager", "early", "electric", "empty", "fierce", "flat", "fragile", "frozen", "gentle", "giant", "golden",
        "green", "grey", "hidden", "hollow", "humble", "icy", "jolly", "kind", "late", "lazy", "little", "lively", "lonely",
        "loud", "lucky", "marble", "mellow", "misty", "modern", "narrow", "noble", "odd", "orange", "pale", "patient", "plain",
        "polite", "proud", "purple", "quick", "quiet", "rapid", "rare", "rough", "round", "rusty", "sandy", "scarlet", "secret",
        "sharp", "shiny", "silent", "silver", "simple", "sleepy", "slow", "small", "smooth", "soft", "solid", "sour", "steady",
        "stormy", "strange", "sturdy", "sunny", "swift", "tall", "tame", "tender", "tiny", "velvet", "violet", "warm", "wild",
        "windy", "wise", "wooden", "young", "zealous",
    ]
    static let nouns = [
        "anchor", "apple", "arrow", "badger", "bakery", "balloon", "banjo", "barrel", "beacon", "beetle", "bicycle", "blanket",
        "bridge", "bucket", "buffalo", "butter", "cabin", "cactus", "camel", "candle", "canyon", "carpet", "castle", "cellar",
        "cherry", "chimney", "cloud", "clover", "comet", "compass", "cookie", "copper", "cottage", "crayon", "crystal", "dolphin",
        "dragon", "drum", "eagle", "engine", "falcon", "feather", "fern", "fiddle", "forest", "fountain", "garden", "glacier",
        "goose", "granite", "guitar", "hammer", "harbor", "helmet", "honey", "island", "jacket", "jungle", "kettle", "ladder",
        "lantern", "lemon", "lighthouse", "lizard", "magnet", "maple", "meadow", "mirror", "monkey", "mountain", "needle",
        "nutmeg", "oasis", "orchard", "otter", "paddle", "parrot", "pebble", "pencil", "pepper", "piano", "pillow", "planet",
        "pocket", "pumpkin", "puzzle", "quilt", "rabbit", "radio", "river", "rocket", "saddle", "sailboat", "scarf", "shovel",
        "spider", "squirrel", "statue", "summit", "teapot", "thunder", "tiger", "tomato", "tractor", "trumpet", "tulip",
        "tunnel", "turtle", "umbrella", "valley", "violin", "volcano", "wagon", "walnut", "whistle", "window", "wizard", "zebra",
    ]

    static func key(_ rng: inout SeededGenerator) -> String {
        "\(adjectives[rng.below(adjectives.count)])-\(nouns[rng.below(nouns.count)])"
    }

    /// A seven-digit number.
    static func number(_ rng: inout SeededGenerator) -> String { String(1_000_000 + rng.below(9_000_000)) }

    static func word(_ rng: inout SeededGenerator) -> String { nouns[rng.below(nouns.count)] }

    static func uuid(_ rng: inout SeededGenerator) -> String {
        let hex = Array("0123456789abcdef")
        func part(_ n: Int) -> String { String((0..<n).map { _ in hex[rng.below(16)] }) }
        return "\(part(8))-\(part(4))-4\(part(3))-\(["8", "9", "a", "b"][rng.below(4)])\(part(3))-\(part(12))"
    }

    /// `count` "secret number" needles with distinct keys: the first at `depth` (or a seeded
    /// depth), the others at seeded depths.
    static func numberNeedles(_ count: Int, depth: Double?, _ rng: inout SeededGenerator)
        -> (keys: [String], values: [String], needles: [(text: String, depth: Double)], depth: Double) {
        let keys = self.keys(count, &rng)
        let values = keys.map { _ in number(&rng) }
        let first = depth ?? Double(rng.below(1001)) / 1000
        var needles = [(text: "The secret number for the \(keys[0]) is \(values[0]).", depth: first)]
        for i in 1..<count {
            needles.append(("The secret number for the \(keys[i]) is \(values[i]).", Double(rng.below(1001)) / 1000))
        }
        return (keys, values, needles, first)
    }

    /// `count` distinct keys.
    static func keys(_ count: Int, _ rng: inout SeededGenerator) -> [String] {
        var out: [String] = []
        while out.count < count {
            let k = key(&rng)
            if !out.contains(k) { out.append(k) }
        }
        return out
    }
}

/// Inserts `needles` into haystack units at the given depths (0...1, by unit index) and joins
/// everything into one text.
func weave(_ units: [String], needles: [(text: String, depth: Double)], separator: String = " ") -> String {
    var parts = units
    // Insert from the deepest so earlier indices stay valid.
    for needle in needles.sorted(by: { $0.depth > $1.depth }) {
        let index = min(parts.count, max(0, Int((needle.depth * Double(units.count)).rounded())))
        parts.insert(needle.text, at: index)
    }
    return parts.joined(separator: separator)
}
