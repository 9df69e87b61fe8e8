// IndexMem — safetensors tests. Apache-2.0.
//
// Round trips, the byte layout other readers expect, and a fuzz of hostile files: every
// corrupted file is either read or refused with an error, never a crash.

import Foundation
import IndexMemSafetensors
import IndexMemKernels
import Testing

@Suite("Safetensors files")
struct SafetensorsTests {
    static func sample() -> Safetensors {
        Safetensors(tensors: ["a.weight": SafetensorsTensor(shape: [2, 3], values: [1, -2, 3.5, 0, .pi, -0]),
                              "b": SafetensorsTensor(shape: [4], values: [1e-30, 7, 8, 9]),
                              "empty": SafetensorsTensor(shape: [0, 5], values: [])],
                    metadata: ["format": "test", "model_sha256": "abc"])
    }

    @Test("write then read gives the same tensors and metadata")
    func roundTrip() throws {
        let file = Self.sample()
        let back = try Safetensors(bytes: try file.serialized())
        #expect(back == file)
    }

    @Test("layout: little-endian header length, JSON header padded to 8, data in name order")
    func layout() throws {
        let bytes = [UInt8](try Self.sample().serialized())
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0)
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
        let a = header["a.weight"] as! [String: Any]
        #expect(a["dtype"] as? String == "F32")
        #expect(a["data_offsets"] as? [Int] == [0, 24])
        #expect(bytes.count == 8 + n + 24 + 16)
        // 3.5 at element 2 of "a.weight", little endian.
        let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[8 + n + 8 + $1]) << (8 * UInt32($1)) }
        #expect(Float(bitPattern: bits) == 3.5)
    }

    @Test("malformed files are refused with a reason")
    func malformed() throws {
        func file(_ header: String, data: Int = 0) -> Data {
            var h = Array(header.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var out = Data((0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) })
            out.append(contentsOf: h)
            out.append(contentsOf: [UInt8](repeating: 0, count: data))
            return out
        }
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "truncated"),
            (Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), "larger than allowed"),
            (file("not json"), "not JSON"),
            (file("[1,2]"), "not a JSON object"),
            (file(#"{"t":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#, data: 2), "only F32"),
            (file(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: 4), "do not hold"),
            (file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 2), "outside"),
            (file(#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4), "non-negative"),
            (file(#"{"t":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: 4), "non-negative"),
            (file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: 4), "outside"),
            (file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), "overlap"),
            (file(#"{"__metadata__":{"k":1}}"#), "not a string"),
        ]
        for (bytes, reason) in cases {
            #expect(throws: SafetensorsError.self) { try Safetensors(bytes: bytes) }
            do { _ = try Safetensors(bytes: bytes) } catch {
                #expect(error.description.contains(reason), "\(error.description) should say '\(reason)'")
            }
        }
    }

    @Test("fuzz: truncations and byte flips never crash")
    func fuzz() throws {
        let good = [UInt8](try Self.sample().serialized())
        var rng = SplitMix64(seed: 42)
        var refused = 0, read = 0
        for i in 0..<3000 {
            var bytes = good
            if i % 3 == 0 {
                bytes = Array(bytes.prefix(rng.below(bytes.count)))
            } else {
                for _ in 0..<(1 + rng.below(4)) { bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            if (try? Safetensors(bytes: Data(bytes))) != nil { read += 1 } else { refused += 1 }
        }
        #expect(refused > 0 && read + refused == 3000)
    }
}
