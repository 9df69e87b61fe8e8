// IndexMem — server tests. Apache-2.0.
//
// Continuous batching: concurrent requests share forward passes, yet each answer is the one
// the library gives alone (SmolLM2's products do not depend on the batch), whatever joins,
// leaves or hangs up around it, and every byte reserved comes back.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Continuous batching in the server", .serialized)
struct BatchingTests {
    /// A request's cache fields and prompt, and the library's greedy answer alone.
    struct Case: Sendable {
        var fields: [String: Int]
        var policy: String
        var prompt: String
        var maxTokens: Int

        func expected(_ engine: Engine) throws -> String {
            let cache = CacheConfiguration(policy: policy, budget: fields["kv_budget"])
            let ids = engine.tokenize(prompt, parseSpecial: true)
            return try engine.makeSession(cache: cache).generate(prompt: ids, options: GenerationOptions(maxTokens: maxTokens, stopAtEndOfTurn: false)).text
        }

        var body: [String: Any] {
            var b: [String: Any] = ["prompt": prompt, "max_tokens": maxTokens, "temperature": 0, "kv_policy": policy, "ignore_eos": true]
            for (k, v) in fields { b[k] = v }
            return b
        }
    }

    static let cases: [Case] = [
        Case(fields: [:], policy: "full", prompt: "The three primary colors are", maxTokens: 14),
        Case(fields: ["kv_budget": 96], policy: "h2o", prompt: String(repeating: "A long preamble about rivers and hills. ", count: 30) + "Now list three rivers:", maxTokens: 10),
        Case(fields: ["kv_budget": 80], policy: "snapkv", prompt: "Give three tips for staying healthy.", maxTokens: 16),
        Case(fields: ["kv_budget": 84], policy: "window", prompt: String(repeating: "Counting sheep, one by one. ", count: 12) + "How many sheep?", maxTokens: 8),
        Case(fields: ["kv_budget": 72], policy: "tova", prompt: "Why is the sky blue?", maxTokens: 12),
        Case(fields: [:], policy: "full", prompt: "Write a haiku about the sea.", maxTokens: 6),
    ]

    @Test("concurrent requests with different cache settings: each answer is the library's alone, and steps were shared")
    func concurrentAnswers() async throws {
        let engine = try SharedEngine.get()
        let expected = try Self.cases.map { try $0.expected(engine) }
        try await withServer { s in
            let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (i, c) in Self.cases.enumerated() {
                    group.addTask {
                        let r = try await s.request("POST", "/v1/completions", json: c.body)
                        #expect(r.status == 200, "\(r.text)")
                        let choice = (try r.json()["choices"] as? [[String: Any]])?.first
                        return (i, choice?["text"] as? String ?? "")
                    }
                }
                var out = [String](repeating: "", count: Self.cases.count)
                for try await (i, text) in group { out[i] = text }
                return out
            }
            for i in Self.cases.indices { #expect(texts[i] == expected[i], "request \(i) (\(Self.cases[i].policy))") }
            let m = try await s.metrics()
            let steps = m["indexmem_batch_steps_total"] ?? 0, sequences = m["indexmem_batch_sequences_total"] ?? 0
            #expect(steps > 0 && sequences / steps > 1.5, "mean batch \(sequences / max(1, steps)) over \(steps) steps")
            #expect((m["indexmem_batch_sequences_max"] ?? 0) >= 3)
        }
    }

    @Test("random joins, hang-ups and cancellations: the others' answers are unchanged, every byte comes back", arguments: [7, 8])
    func joinLeaveCancelFuzz(seed: UInt64) async throws {
        let engine = try SharedEngine.get()
        let expected = try Self.cases.map { try $0.expected(engine) }
        var rng = SplitMix64(seed: seed)
        // Each client: which case, when it starts (ms), and whether it hangs up (after how many ms).
        let plan: [(index: Int, delay: UInt64, hangUp: UInt64?, stream: Bool)] = (0..<10).map { _ in
            (Int(rng.next() % UInt64(Self.cases.count)), rng.next() % 400, rng.next() % 3 == 0 ? 50 + rng.next() % 600 : nil,
             rng.next() % 2 == 0)
        }
        try await withServer(configure: { $0.maxActive = 5; $0.maxBatchTokens = 160 }) { s in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, delay, hangUp, stream) in plan {
                    let c = Self.cases[index]
                    group.addTask {
                        try await Task.sleep(nanoseconds: delay * 1_000_000)
                        if let hangUp {
                            var b = c.body
                            b["stream"] = stream
                            b["max_tokens"] = 400
                            let body = try JSONSerialization.data(withJSONObject: b)
                            let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
                            let fd = try HTTPTestClient.connect(port: s.port, timeout: 60)
                            HTTPTestClient.send(fd, Array(head.utf8) + Array(body))
                            try await Task.sleep(nanoseconds: hangUp * 1_000_000)
                            close(fd)
                            return
                        }
                        let r = try await s.request("POST", "/v1/completions", json: c.body)
                        #expect(r.status == 200, "\(r.text)")
                        let text = (try r.json()["choices"] as? [[String: Any]])?.first?["text"] as? String
                        #expect(text == expected[index], "case \(index), plan \(plan)")
                    }
                }
                try await group.waitForAll()
            }
            let drained = try await eventually(120) {
                let m = try await s.metrics()
                return m["indexmem_requests_active"] == 0 && m["indexmem_kv_bytes_in_use"] == 0 && m["indexmem_kv_bytes_reserved"] == 0
                    && m["indexmem_queue_length"] == 0
            }
            #expect(drained, "plan \(plan)")
            #expect(try await s.request("GET", "/health").status == 200)
        }
    }
}
