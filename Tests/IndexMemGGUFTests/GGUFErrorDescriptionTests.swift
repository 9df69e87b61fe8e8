// IndexMem — GGUF reader tests. Apache-2.0.

import IndexMemGGUF
import IndexMemTestSupport
import Testing

@Suite("GGUF error descriptions")
struct GGUFErrorDescriptionTests {
    @Test("every case has a message that names the problem")
    func everyCase() {
        let cases: [(GGUFError, [String])] = [
            (.cannotOpen(path: "/x/m.gguf", reason: "No such file"), ["/x/m.gguf", "No such file"]),
            (.badMagic(found: 0x4c4d_4747), ["magic", "4c4d4747", "GGUF"]),
            (.unsupportedVersion(7), ["version 7"]),
            (.truncated(offset: 10, needed: 8, fileSize: 12), ["truncated", "10", "8", "12"]),
            (.implausibleCount(what: "tensor count", count: 1 << 63), ["tensor count", "9223372036854775808"]),
            (.unknownValueType(13, key: "a.b"), ["a.b", "13"]),
            (.invalidUTF8(offset: 40), ["UTF-8", "40"]),
            (.duplicateName("blk.0.attn_q.weight"), ["blk.0.attn_q.weight", "twice"]),
            (.unknownTensorType(rawValue: 9, tensor: "w"), ["'w'", "9", "Q8_0"]),
            (.invalidTensor(name: "w", reason: "dimension 0"), ["'w'", "dimension 0"]),
            (.invalidAlignment(24), ["alignment", "24"]),
            (.missingKey("llama.block_count"), ["llama.block_count", "missing"]),
            (.wrongValueType(key: "k", expected: "integer", found: "string"), ["'k'", "integer", "string"]),
            (.missingTensor("output.weight"), ["output.weight", "missing"]),
        ]
        for (error, words) in cases {
            #expect(!error.description.isEmpty)
            for w in words { #expect(error.description.contains(w), "'\(error.description)' should mention '\(w)'") }
        }
    }

    @Test("errors thrown by the reader describe the actual file")
    func thrownErrors() throws {
        var w = smallWriter()
        w.version = 4
        let version = try #require(parseError(w.bytes()))
        #expect(version.description.contains("version 4"))

        w = smallWriter()
        w.magic = Array("GGML".utf8)
        let magic = try #require(parseError(w.bytes()))
        #expect(magic.description.contains("not a GGUF file"))

        let (bytes, layout) = smallWriter().build()
        let cut = layout.headerEnd - 3  // inside the last tensor's offset field
        let truncated = try #require(parseError(Array(bytes.prefix(cut))))
        #expect(truncated == .truncated(offset: layout.headerEnd - 8, needed: 8, fileSize: cut))
        #expect(truncated.description.contains("truncated") && truncated.description.contains("\(cut) bytes"), "\(truncated)")

        w = GGUFWriter()
        w.add(key: "general.alignment", value: .uint64(1 << 40))
        let alignment = try #require(parseError(w.bytes()))
        #expect(alignment.description.contains("alignment") && alignment.description.contains("\(UInt64(1) << 40)"))

        w = smallWriter()
        w.addRawTensor(name: "mystery", dimensions: [32], typeRaw: 23, data: [UInt8](repeating: 0, count: 64))
        let type = try #require(parseError(w.bytes()))
        #expect(type.description.contains("mystery") && type.description.contains("23"))

        w = smallWriter()
        w.addRawTensor(name: "far", dimensions: [8], typeRaw: 0, data: [UInt8](repeating: 0, count: 32), offset: 1 << 30)
        let far = try #require(parseError(w.bytes()))
        #expect(far.description.contains("far") && far.description.contains("beyond the end"))
    }
}
