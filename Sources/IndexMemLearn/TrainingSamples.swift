// IndexMem — learning. Apache-2.0.
//
// Training sequences for the indexer, made deterministically from a seed and a corpus of
// long natural text (scripts/fetch_training_data.sh; never the evaluation haystacks):
//   * `text`: a window of the corpus as is;
//   * `recall`: the window with one to three facts stated once at random depths, questions
//     about all of them at the end and their answers (a chat turn), so that the answer's
//     queries reach back to every fact (a cache cannot know which fact will be asked);
//   * `repeat`: a short passage early on, text, then a request to repeat it and the passage
//     again (long-range copying).
// The facts' wording, names and objects are our own and differ from the evaluation tasks'
// ("The secret number for the X is N.").

import Foundation
import IndexMem
import IndexMemKernels

// MARK: - Corpus

public struct TrainingCorpus: Sendable {
    public let paragraphs: [String]
    /// sha256 over the files' names and contents, in name order.
    public let sha256: String
    public let files: [String]
    public let bytes: Int

    /// Reads every `.txt` file of a directory (sorted by name), or one file.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LearnError.corpus("no training corpus at \(path) (run scripts/fetch_training_data.sh)")
        }
        let files: [String]
        if isDirectory.boolValue {
            files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".txt") }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
        } else {
            files = [path]
        }
        guard !files.isEmpty else { throw LearnError.corpus("\(path) holds no .txt files") }
        var paragraphs: [String] = []
        var digestInput = Data()
        var bytes = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw LearnError.corpus("cannot read \(file)") }
            bytes += data.count
            digestInput.append(Data((file as NSString).lastPathComponent.utf8))
            digestInput.append(data)
            let text = String(decoding: data, as: UTF8.self)
            for p in text.components(separatedBy: "\n\n") {
                let t = p.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
                if t.count >= 40 { paragraphs.append(t) }
            }
        }
        guard paragraphs.count >= 50 else { throw LearnError.corpus("\(path) has only \(paragraphs.count) paragraphs; need a long text corpus") }
        self.paragraphs = paragraphs
        self.files = files
        self.bytes = bytes
        sha256 = digestInput.withUnsafeBytes { SHA256.hex(of: $0) }
    }
}

// MARK: - Samples

public enum SampleKind: String, Sendable, CaseIterable {
    case text, recall, `repeat`
}

struct TrainingSampleMaker {
    let engine: Engine
    let corpus: TrainingCorpus
    /// Tokens per sequence (at most).
    let length: Int
    /// Changes whenever the samples a seed gives change (checkpoints of another version are not resumed).
    static let recipeVersion = 2

    static let colors = ["amber", "cobalt", "crimson", "ivory", "jade", "ochre", "scarlet", "silver", "teal", "violet"]
    static let objects = ["suitcase", "telescope", "violin", "briefcase", "lantern", "typewriter", "compass", "kettle", "camera", "globe"]
    static let names = ["Adaeze Okafor", "Bruno Lindqvist", "Chen Wei", "Dario Ferrante", "Elif Demir", "Farah Haddad",
                        "Goran Petrovic", "Hana Sato", "Ines Moreau", "Jonas Becker", "Kavya Rao", "Lucia Ortega"]
    static let places = ["archive room", "boathouse", "greenhouse", "observatory", "server hall", "wine cellar", "workshop", "chapel"]

    /// One fact: (statement, question, answer).
    static func fact(_ rng: inout SplitMix64) -> (String, String, String) {
        let number = 100 + Int(rng.below(99_900))
        switch rng.below(4) {
        case 0:
            let c = colors[rng.below(colors.count)], o = objects[rng.below(objects.count)]
            return ("Remember that the \(c) \(o) is stored in locker \(number).",
                    "In which locker is the \(c) \(o) stored?", "The \(c) \(o) is stored in locker \(number).")
        case 1:
            let n = names[rng.below(names.count)], year = 1700 + Int(rng.below(320))
            return ("Records show that \(n) was born in \(year).", "In which year was \(n) born?", "\(n) was born in \(year).")
        case 2:
            let p = places[rng.below(places.count)], code = "\(colors[Int(rng.below(10))])-\(number)"
            return ("The door code of the \(p) is \(code).", "What is the door code of the \(p)?", "The door code of the \(p) is \(code).")
        default:
            let flight = "\(["AX", "BK", "QF", "LZ", "TR"][Int(rng.below(5))])\(Int(rng.below(900)) + 100)"
            let gate = "\(["A", "B", "C", "D"][Int(rng.below(4))])\(Int(rng.below(60)) + 1)"
            return ("Flight \(flight) departs from gate \(gate).", "From which gate does flight \(flight) depart?",
                    "Flight \(flight) departs from gate \(gate).")
        }
    }

    /// Consecutive corpus paragraphs from a random start, about `characters` long.
    func passage(_ rng: inout SplitMix64, characters: Int) -> [String] {
        var out: [String] = []
        var i = rng.below(corpus.paragraphs.count)
        var total = 0
        while total < characters {
            out.append(corpus.paragraphs[i])
            total += corpus.paragraphs[i].count + 1
            i = (i + 1) % corpus.paragraphs.count
        }
        return out
    }

    /// One training sequence: its tokens and where its final request starts (the question
    /// and answer of `recall`, the repeat request and copy of `repeat`, the last quarter, at
    /// most 256 tokens, of `text`).
    struct Sequence {
        var kind: SampleKind
        var tokens: [Int]
        var requestStart: Int
    }

    /// Sample `index` of a run seeded with `seed`.
    func sample(seed: UInt64, index: Int) -> Sequence {
        var rng = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let kind = SampleKind.allCases[index % SampleKind.allCases.count]
        var characters = length * 4
        for _ in 0..<6 {
            var r = rng
            let s = build(kind: kind, rng: &r, characters: characters)
            if s.tokens.count <= length { return s }
            characters = characters * length / s.tokens.count * 97 / 100
        }
        var s = build(kind: kind, rng: &rng, characters: characters)
        s.tokens = Array(s.tokens.prefix(length))
        s.requestStart = min(s.requestStart, s.tokens.count - min(256, s.tokens.count / 4))
        return s
    }

    private func build(kind: SampleKind, rng: inout SplitMix64, characters: Int) -> Sequence {
        switch kind {
        case .text:
            let tokens = engine.tokenize(passage(&rng, characters: characters).joined(separator: "\n\n"))
            return Sequence(kind: kind, tokens: tokens, requestStart: tokens.count - min(256, tokens.count / 4))
        case .recall:
            var units = passage(&rng, characters: characters - 200)
            let facts = (0..<(1 + Int(rng.below(3)))).map { _ in Self.fact(&rng) }
            for f in facts {
                let at = rng.below(units.count + 1)
                units.insert(f.0, at: at)
            }
            return chat(kind: kind, body: units.joined(separator: "\n\n") + "\n\n",
                        request: "Answer from the text above. " + facts.map(\.1).joined(separator: " "),
                        answer: facts.map(\.2).joined(separator: " "))
        case .repeat:
            let quoted = passage(&rng, characters: 300).prefix(1).joined()
            let body = passage(&rng, characters: characters - 2 * quoted.count - 100)
            return chat(kind: kind, body: "Here is a paragraph to remember:\n\n" + quoted + "\n\n" + body.joined(separator: "\n\n") + "\n\n",
                        request: "Repeat the paragraph I asked you to remember, word for word.", answer: quoted)
        }
    }

    /// A chat turn whose user content is `body + request`, then the answer; the request starts
    /// after a blank line, where the pre-tokenizer splits anyway, so tokenizing the two halves
    /// apart gives the tokens of the whole.
    private func chat(kind: SampleKind, body: String, request: String, answer: String) -> Sequence {
        let user = body + request
        guard let prompt = engine.formatChat([ChatMessage(role: "user", content: user)]),
              let at = prompt.range(of: request, options: .backwards) else {
            let head = engine.tokenize(body)
            return Sequence(kind: kind, tokens: head + engine.tokenizer.encode(request + "\n" + answer, addSpecial: false, parseSpecial: false),
                            requestStart: head.count)
        }
        let head = engine.tokenize(String(prompt[..<at.lowerBound]), parseSpecial: true)
        let tail = engine.tokenizer.encode(String(prompt[at.lowerBound...]), addSpecial: false, parseSpecial: true)
        return Sequence(kind: kind, tokens: head + tail + engine.tokenizer.encode(answer, addSpecial: false, parseSpecial: false),
                        requestStart: head.count)
    }
}

// MARK: - Errors

public enum LearnError: Error, CustomStringConvertible, Sendable {
    case corpus(String)
    case checkpoint(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .corpus(let m): return "training corpus: \(m)"
        case .checkpoint(let m): return "checkpoint: \(m)"
        case .invalidArgument(let m): return m
        }
    }
}
