// IndexMem — GGUF tests. Apache-2.0.
//
// Files a hostile test fed the reader: a device as a model (/dev/zero has no size and never
// ends) and a corrupted key name holding NUL bytes and a terminal escape, which an error
// message must print escaped.

import Foundation
import IndexMemGGUF
import IndexMemTestSupport
import Testing

@Suite("GGUF: hostile files")
struct GGUFHostileFileTests {
    @Test("/dev/zero and other non-regular files are refused as 'not a regular file'")
    func deviceIsNotAModel() throws {
        for path in ["/dev/zero", "/dev/null"] {
            let error = try #require(throws: GGUFError.self) { try GGUFFile(path: path) }
            #expect(error.description.contains("not a regular file"), "\(path): \(error)")
        }
    }

    @Test("a corrupted key name is printed escaped: no NUL byte or escape character in the message")
    func corruptedKeyIsEscaped() throws {
        var writer = GGUFWriter()
        let key: [UInt8] = Array("llama.ro".utf8) + [0, 0x1B] + Array("[2Jpe".utf8)
        writer.addRaw(key: key, type: 99, payload: [])
        let error = try #require(throws: GGUFError.self) { try GGUFFile(bytes: GGUFBytes.copy(writer.bytes())) }
        let message = error.description
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 }, "\(message.debugDescription)")
        #expect(message.contains("llama.ro\\u{0}\\u{1b}[2Jpe"), "\(message)")
    }
}
