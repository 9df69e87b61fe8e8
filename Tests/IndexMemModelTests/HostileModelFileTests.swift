// IndexMem — model tests. Apache-2.0.
//
// Metadata a hostile test put in a model file: a RoPE base of infinity was accepted (only
// nan, 0 and -1 were refused), and would have made every rotation angle 0 or nan.

import Foundation
import IndexMem
import IndexMemGGUF
import IndexMemTestSupport
import Testing

@Suite("Model files with impossible metadata")
struct HostileModelFileTests {
    @Test("rope.freq_base of inf, -inf, nan, 0 or -1 is refused, naming the key",
          arguments: [Float.infinity, -Float.infinity, Float.nan, 0, -1])
    func ropeBaseMustBeFinite(base: Float) throws {
        let path = try TinyModels.write("qwen2", variant: "-rope\(base)", override: ["qwen2.rope.freq_base": .float32(base)])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: (any Error).self) { try Engine(path: path, threads: 1) }
        #expect("\(error)".contains("rope.freq_base"), "\(error)")
    }

    @Test("/dev/zero as a model: 'not a regular file'")
    func deviceAsModel() throws {
        let error = try #require(throws: (any Error).self) { try Engine(path: "/dev/zero", threads: 1) }
        #expect("\(error)".contains("not a regular file"), "\(error)")
    }
}
