// IndexMem — GGUF reader tests. Apache-2.0.

import IndexMemGGUF
import IndexMemTestSupport
import Testing

@Suite("GGUF real model")
struct GGUFRealModelTests {
    @Test("SmolLM2-135M-Instruct Q4_1 opens: llama, 272 tensors, all data inside the file")
    func smolLM2() throws {
        let path = try requireDefaultModel()
        let file = try GGUFFile(path: path)
        #expect(file.architecture == "llama")
        #expect(file.version == 3)
        #expect(file.tensors.count == 272)
        #expect(invariantViolation(file) == nil)
        #expect(try file.requireInt("llama.block_count") == 30)
        #expect(try file.requireInt("llama.embedding_length") == 576)
        let tokens = try #require(try file.stringArray("tokenizer.ggml.tokens"))
        #expect(tokens.count == 49152)
        let types = Set(file.tensors.map(\.type))
        #expect(types.isSubset(of: [.f32, .q4_1, .q8_0, .f16, .q6_K]))
        let embd = try #require(file.tensor("token_embd.weight"))
        #expect(embd.dimensions == [576, 49152])
        // The last tensor ends inside the file.
        let end = file.tensors.map { $0.fileOffset + $0.byteCount }.max() ?? 0
        #expect(end <= file.bytes.count)
    }
}
