// IndexMem — server tests. Apache-2.0.
//
// Pieces of the server without HTTP: typed JSON reading, stop strings in streamed text,
// byte counts, and the KV reservation against what a session really holds.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("Server pieces")
struct ServerUnitTests {
    @Test("JSON keeps types apart: numbers are not booleans, integers must be whole")
    func jsonTypes() throws {
        let o = try JSONValue.parseObject(Data(#"{"a": true, "b": 1, "c": 1.5, "d": "x", "e": null, "f": [1], "g": {"h": 2}}"#.utf8))
        #expect(try o.bool("a") == true)
        #expect(throws: APIError.self) { try o.bool("b") }
        #expect(throws: APIError.self) { try o.int("a") }
        #expect(try o.int("b") == 1)
        #expect(throws: APIError.self) { try o.int("c") }
        #expect(try o.double("c") == 1.5)
        #expect(try o.string("e") == nil)
        #expect(try o.array("f") == [.number(1)])
        #expect(try o.object("g")?.int("h") == 2)
        #expect(throws: APIError.self) { try o.int("b", in: 2...3) }
        for bad in ["", "[]", "nul", "{\"a\":}", "\u{FF}"] {
            #expect(throws: APIError.self) { try JSONValue.parseObject(Data(bad.utf8)) }
        }
    }

    @Test("stop strings: text before them is sent, a partial match is held back, nothing after")
    func stopStrings() throws {
        let engine = try SharedEngine.get()
        let ids = engine.tokenizer.encode("Hello there, General Kenobi. You are a bold one.", addSpecial: false, parseSpecial: false)
        var stream = TextStream(tokenizer: engine.tokenizer, stops: ["Kenobi"])
        var sent = ""
        var stopped = false
        for id in ids where !stopped {
            let (piece, s) = stream.append(id)
            sent += piece
            stopped = s
            #expect(!sent.contains("Keno"))
        }
        #expect(stopped)
        #expect(sent == "Hello there, General ")
        var plain = TextStream(tokenizer: engine.tokenizer, stops: [])
        var all = ""
        for id in ids { all += plain.append(id).text }
        all += plain.finish()
        #expect(all == "Hello there, General Kenobi. You are a bold one.")
    }

    @Test("after a stop string, nothing more is sent: not even a character begun after it")
    func stopStringBeforePartialCharacter() throws {
        let engine = try SharedEngine.get()
        let tokenizer = engine.tokenizer
        // A token of ASCII text then the first bytes of a multi-byte character (byte-level
        // BPE has them, e.g. " " + the lead byte of "—"): the stop string is its ASCII part.
        let found = (0..<engine.configuration.vocabularySize).lazy.compactMap { id -> (id: Int, ascii: String)? in
            let bytes = tokenizer.pieceBytes(id)
            guard let lead = bytes.firstIndex(where: { $0 >= 0x80 }), lead > 0, bytes[lead] >= 0xC0 else { return nil }
            let need = bytes[lead] >= 0xF0 ? 4 : bytes[lead] >= 0xE0 ? 3 : 2
            guard bytes.count - lead < need, bytes[(lead + 1)...].allSatisfy({ $0 & 0xC0 == 0x80 }),
                  bytes[..<lead].allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
            return (id, String(decoding: bytes[..<lead], as: UTF8.self))
        }.first
        let (id, ascii) = try #require(found, "no token of ASCII text and an incomplete character in the vocabulary")
        // Without a stop string, the incomplete character comes out at the end as U+FFFD.
        var plain = TextStream(tokenizer: tokenizer, stops: [])
        let piece = plain.append(id)
        #expect(piece.text == ascii && !piece.stopped)
        #expect(plain.finish() == "\u{FFFD}")
        // With one, the text is cut before it, and the end sends nothing.
        var stream = TextStream(tokenizer: tokenizer, stops: [ascii])
        let cut = stream.append(id)
        #expect(cut.text == "" && cut.stopped)
        #expect(stream.finish() == "")
    }

    @Test("byte counts with units")
    func byteCounts() {
        #expect(ServerOptions.parseBytes("1048576") == 1_048_576)
        #expect(ServerOptions.parseBytes("64M") == 64 << 20)
        #expect(ServerOptions.parseBytes("64MiB") == 64 << 20)
        #expect(ServerOptions.parseBytes("1.5g") == 3 << 29)
        #expect(ServerOptions.parseBytes("512k") == 512 << 10)
        #expect(ServerOptions.parseBytes("lots") == nil)
        #expect(ServerOptions.parseBytes("-1M") == nil)
    }

    @Test("a session never holds more KV bytes than its reservation", arguments: [
        CacheConfiguration(policy: "snapkv", budget: 128),
        CacheConfiguration(policy: "window", ratio: 0.25),
        CacheConfiguration(policy: "pyramid", budget: 160),
        CacheConfiguration(policy: "h2o", budget: 128, mode: .prefillThenCompress),
        CacheConfiguration(),
    ])
    func reservationBound(_ cache: CacheConfiguration) throws {
        let engine = try SharedEngine.get()
        let prompt = engine.tokenize(String(repeating: "Rivers flow to the sea, and the sea gives rain back to rivers. ", count: 45))
        let maxTokens = 24
        let bound = try cache.kvBytesBound(model: engine.configuration, promptTokens: prompt.count, totalTokens: prompt.count + maxTokens)
        let session = try engine.makeSession(cache: cache)
        try prefillInChunks(session, prompt, chunk: cache.chunk) { #expect(session.kvBytesPeak <= bound) }
        if cache.mode == .prefillThenCompress { session.compress() }
        let r = try session.generate(prompt: [], options: GenerationOptions(maxTokens: maxTokens, stopAtEndOfTurn: false))
        #expect(r.generatedTokens.count == maxTokens)
        #expect(session.kvBytesPeak <= bound, "\(cache.policy): peak \(session.kvBytesPeak) > reservation \(bound)")
        if !cache.isFull && cache.mode == .bounded {
            // The bound is tight enough to be useful: well under the full cache's bytes.
            #expect(bound < session.cacheReport().kvBytesFullCache)
        }
    }
}
