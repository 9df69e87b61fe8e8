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
    let cases: [Case]
}

/// The default model's tokenizer, loaded once.
enum SmolLM2Tokenizer {
    static let loaded: Result<any Tokenizer, any Error> = Result {
        let file = try GGUFFile(path: try requireDefaultModel())
        return try makeTokenizer(vocabulary: try TokenizerVocabulary(gguf: file))
    }

    static func get() throws -> any Tokenizer { try loaded.get() }

    static func fixture() throws -> TokenizeFixture {
        let url = URL(fileURLWithPath: TestPaths.fixtures + "/smollm2/tokenize.json")
        return try JSONDecoder().decode(TokenizeFixture.self, from: Data(contentsOf: url))
    }
}

@Suite("SmolLM2 tokenizer against llama.cpp")
struct FixtureTokenizationTests {
    static let caseNames: [String] = (try? SmolLM2Tokenizer.fixture().cases.map(\.name)) ?? []

    @Test("token ids equal llama.cpp's", arguments: caseNames)
    func ids(name: String) throws {
        let fixture = try SmolLM2Tokenizer.fixture()
        let c = try #require(fixture.cases.first { $0.name == name })
        let tokenizer = try SmolLM2Tokenizer.get()
        let ours = tokenizer.encode(c.text, addSpecial: false, parseSpecial: c.special)
        #expect(ours == c.ids, "'\(c.name)': ours \(ours) llama.cpp \(c.ids)")
        if c.roundtrip {
            #expect(tokenizer.decode(ours, special: c.special) == c.text)
        }
    }

    @Test("BOS is added only when the vocabulary says so")
    func bos() throws {
        let fixture = try SmolLM2Tokenizer.fixture()
        let tokenizer = try SmolLM2Tokenizer.get()
        #expect(tokenizer.vocabulary.addBos == fixture.add_bos)
        let withSpecial = tokenizer.encode("hello", addSpecial: true, parseSpecial: false)
        let without = tokenizer.encode("hello", addSpecial: false, parseSpecial: false)
        #expect(withSpecial == (fixture.add_bos ? [tokenizer.vocabulary.bosTokenId!] + without : without))
    }
}
