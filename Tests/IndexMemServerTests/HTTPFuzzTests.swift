// IndexMem — server tests. Apache-2.0.
//
// Fuzz-style tests of the HTTP layer: random and truncated bodies, random JSON of the wrong
// shape, wrong content types, garbage request lines and huge headers. Every answer is a
// 4xx (never a 5xx, never a dropped connection without a reply), and the server still
// answers /health afterwards.

import Foundation
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("HTTP fuzzing", .serialized)
struct HTTPFuzzTests {
    static let routes = ["/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"]

    /// A random JSON value of bounded depth, with the field names the server reads.
    static func randomJSON(_ rng: inout SplitMix64, depth: Int = 0) -> Any {
        let keys = ["model", "messages", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream", "stream_options",
                    "kv_policy", "kv_budget", "kv_ratio", "kv_mode", "role", "content", "tokens", "n", "include_usage", "logprobs"]
        switch Int(rng.next() % (depth > 3 ? 5 : 7)) {
        case 0: return NSNull()
        case 1: return rng.next() % 2 == 0
        case 2: return [Double(Int64(bitPattern: rng.next()) % 100_000), -1.0, 0.5, 1e300, 3.0, 1e-9][Int(rng.next() % 6)]
        case 3: return ["", "user", "assistant", "full", "snapkv", "bounded", "\u{0}", "日本語", "<|im_end|>", String(repeating: "x", count: 300)][Int(rng.next() % 10)]
        case 4: return Int(rng.next() % 50_000)
        case 5: return (0..<Int(rng.next() % 4)).map { _ in randomJSON(&rng, depth: depth + 1) }
        default:
            var o: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 6) { o[keys[Int(rng.next() % UInt64(keys.count))]] = randomJSON(&rng, depth: depth + 1) }
            return o
        }
    }

    @Test("random JSON, random bytes, truncated bodies, wrong content types: always a 4xx, then /health")
    func randomBodies() async throws {
        try await withServer(configure: {
            $0.maxBodyBytes = 16 << 10
            $0.defaultMaxTokens = 2  // a random body that happens to be valid stays cheap
        }) { s in
            var rng = SplitMix64(seed: 20_261_123)
            var statuses: [Int: Int] = [:]
            for i in 0..<160 {
                let route = Self.routes[i % Self.routes.count]
                var bytes: [UInt8]
                var contentType = "application/json"
                switch i % 5 {
                case 0, 1:
                    var o = Self.randomJSON(&rng)
                    if var d = o as? [String: Any] { d["max_tokens"] = 2; o = d }
                    bytes = Array((try? JSONSerialization.data(withJSONObject: o, options: [.fragmentsAllowed])) ?? Data("{".utf8))
                case 2:
                    bytes = (0..<Int(rng.next() % 2000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                case 3:
                    let valid = try JSONSerialization.data(withJSONObject: ["prompt": "hello there", "messages": [["role": "user", "content": "hi"]],
                                                                             "max_tokens": 2, "content": "abc", "tokens": [1, 2, 3]])
                    bytes = Array(valid.prefix(Int(rng.next() % UInt64(valid.count))))
                default:
                    bytes = Array("{\"prompt\": \"hi\", \"max_tokens\": 2}".utf8)
                    contentType = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx",
                                   "image/png"][Int(rng.next() % 6)]
                }
                let r = try await s.request("POST", route, body: String(decoding: bytes, as: UTF8.self), contentType: contentType.isEmpty ? nil : contentType,
                                      timeout: 120)
                statuses[r.status, default: 0] += 1
                // Random JSON may be a valid request (200); nothing may be a server error.
                #expect(r.status < 500, "route \(route) case \(i % 5): \(r.status) \(r.text)")
                if r.status >= 400 {
                    let error = (try? r.json())?["error"] as? [String: Any]
                    #expect(error?["message"] is String, "\(r.text)")
                }
                if i % 5 >= 2 { #expect((400..<500).contains(r.status), "route \(route) case \(i % 5): \(r.status) \(r.text)") }
            }
            #expect(statuses.keys.contains { (400..<500).contains($0) })
            #expect(try await s.request("GET", "/health").status == 200)
        }
    }

    @Test("a body shorter than its Content-Length, then the client stops sending: a 4xx")
    func truncatedBody() async throws {
        try await withServer { s in
            for route in Self.routes {
                let head = "POST \(route) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                let r = try await HTTPTestClient.exchangeOffPool(port: s.port, bytes: Array((head + "{\"prompt\": \"hel").utf8), halfClose: true, timeout: 30)
                #expect((400..<500).contains(r.status), "\(route): \(r.status) \(r.text)")
            }
            #expect(try await s.request("GET", "/health").status == 200)
        }
    }

    @Test("garbage request lines, huge headers, many headers, bad chunked encoding: a 4xx")
    func malformedRequests() async throws {
        try await withServer(configure: { $0.maxHeaderBytes = 16 << 10 }) { s in
            var rng = SplitMix64(seed: 7)
            var cases: [[UInt8]] = [
                Array("GARBAGE\r\n\r\n".utf8),
                Array("GET / HTTP/9.9\r\n\r\n".utf8),
                Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8),
                Array(("GET /health HTTP/1.1\r\nHost: x\r\n" + (0..<500).map { "X-H\($0): \(String(repeating: "b", count: 60))\r\n" }.joined() + "\r\n").utf8),
                Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n".utf8),
                Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".utf8),
                Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789".utf8),
            ]
            for _ in 0..<20 { cases.append((0..<Int(1 + rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + Array("\r\n\r\n".utf8)) }
            for (i, bytes) in cases.enumerated() {
                let r = try await HTTPTestClient.exchangeOffPool(port: s.port, bytes: bytes, halfClose: true, timeout: 30)
                #expect((400..<500).contains(r.status), "case \(i): \(r.status) \(r.text.prefix(200))")
            }
            #expect(try await s.request("GET", "/health").status == 200)
        }
    }
}
