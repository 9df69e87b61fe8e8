// IndexMem — tokenizer tests. Apache-2.0.
//
// Token ids of a varied text set against llama.cpp's (Tests/Fixtures/smollm2/tokenize.json,
// written by scripts/make_fixtures.py), and decode(encode(s)) == s.

import Foundation
import IndexMemGGUF
import IndexMemModel
import IndexMemTestSupport
import IndexMemTokenizer
import Testing

struct TokenizeFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let text: String
        let special: Bool
        let ids: [Int]
        let roundtrip: Bool
    }
    let add_bos: Bool
    /// `tokenize("hello", add_bos: true)` (newer fixtures).
    let hello_with_special: [Int]?
    let cases: [Case]
}

/// A real model's tokenizer and its llama.cpp fixture (Tests/Fixtures/<fixture>/tokenize.json).
struct RealTokenizer: Sendable {
    let fixture: String
    let path: @Sendable () throws -> String

    static let smollm2 = RealTokenizer(fixture: "smollm2", path: { try requireDefaultModel() })
    static let gemma3 = RealTokenizer(fixture: "gemma3", path: { try requireGemmaModel() })

    private static let cache = LoadedTokenizers()

    func get() throws -> any Tokenizer { try Self.cache.tokenizer(fixture, path) }

    func load() throws -> TokenizeFixture {
        let url = URL(fileURLWithPath: TestPaths.fixtures + "/\(fixture)/tokenize.json")
        return try JSONDecoder().decode(TokenizeFixture.self, from: Data(contentsOf: url))
    }

    static func caseNames(_ t: RealTokenizer) -> [String] { (try? t.load().cases.map(\.name)) ?? [] }
}

/// Tokenizers loaded once per model.
final class LoadedTokenizers: @unchecked Sendable {
    private var loaded: [String: Result<any Tokenizer, any Error>] = [:]
    private let lock = NSLock()

    func tokenizer(_ name: String, _ path: () throws -> String) throws -> any Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let r = loaded[name] { return try r.get() }
        let r = Result { () throws -> any Tokenizer in
            let file = try GGUFFile(path: try path())
            return try makeTokenizer(vocabulary: try TokenizerVocabulary(gguf: file))
        }
        loaded[name] = r
        return try r.get()
    }
}

/// The default model's tokenizer, loaded once.
enum SmolLM2Tokenizer {
    static func get() throws -> any Tokenizer { try RealTokenizer.smollm2.get() }
    static func fixture() throws -> TokenizeFixture { try RealTokenizer.smollm2.load() }
}

@Suite("Tokenizers against llama.cpp")
struct FixtureTokenizationTests {
    static let cases: [(String, String)] =
        RealTokenizer.caseNames(.smollm2).map { ("smollm2", $0) } + RealTokenizer.caseNames(.gemma3).map { ("gemma3", $0) }

    static func tokenizer(_ model: String) -> RealTokenizer { model == "gemma3" ? .gemma3 : .smollm2 }

    @Test("token ids equal llama.cpp's", arguments: cases)
    func ids(model: String, name: String) throws {
        let real = Self.tokenizer(model)
        let fixture = try real.load()
        let c = try #require(fixture.cases.first { $0.name == name })
        let tokenizer = try real.get()
        let ours = tokenizer.encode(c.text, addSpecial: false, parseSpecial: c.special)
        #expect(ours == c.ids, "\(model) '\(c.name)': ours \(ours) llama.cpp \(c.ids)")
        if c.roundtrip {
            #expect(tokenizer.decode(ours, special: c.special) == c.text)
        }
    }

    @Test("BOS is added only when the vocabulary says so", arguments: ["smollm2", "gemma3"])
    func bos(model: String) throws {
        let real = Self.tokenizer(model)
        let fixture = try real.load()
        let tokenizer = try real.get()
        #expect(tokenizer.vocabulary.addBos == fixture.add_bos)
        let withSpecial = tokenizer.encode("hello", addSpecial: true, parseSpecial: false)
        let without = tokenizer.encode("hello", addSpecial: false, parseSpecial: false)
        #expect(withSpecial == (fixture.add_bos ? [tokenizer.vocabulary.bosTokenId!] + without : without))
        if let reference = fixture.hello_with_special { #expect(withSpecial == reference) }
    }
}
