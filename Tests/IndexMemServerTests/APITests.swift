// IndexMem — server tests. Apache-2.0.
//
// The routes over real sockets against the default model: shapes of answers (OpenAI's
// objects, SSE chunks and [DONE], usage), greedy output equal to the library's, and every
// kind of bad request answered with an OpenAI error object and the right status.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("HTTP API on SmolLM2", .serialized)
struct APITests {
    @Test("health, models, metrics, tokenize and detokenize")
    func basicRoutes() async throws {
        try await withServer { s in
            let health = try await s.request("GET", "/health")
            #expect(health.status == 200)
            #expect(try health.json()["status"] as? String == "ok")

            let models = try await s.request("GET", "/v1/models").json()
            let data = try #require(models["data"] as? [[String: Any]])
            #expect(data.first?["id"] as? String == "SmolLM2-135M-Instruct.Q4_1")
            #expect(try await s.request("GET", "/v1/models/SmolLM2-135M-Instruct.Q4_1").status == 200)
            #expect(try await s.request("GET", "/v1/models/nope").status == 404)

            let tokens = try await s.request("POST", "/tokenize", json: ["content": "Hello world"]).json()["tokens"] as? [Int]
            let engine = try SharedEngine.get()
            #expect(tokens == engine.tokenizer.encode("Hello world", addSpecial: false, parseSpecial: true))
            let text = try await s.request("POST", "/detokenize", json: ["tokens": tokens ?? []]).json()["content"] as? String
            #expect(text == "Hello world")
            let pieces = try await s.request("POST", "/tokenize", json: ["content": "<|im_start|>hi", "with_pieces": true]).json()["tokens"] as? [[String: Any]]
            #expect(pieces?.first?["piece"] as? String == "<|im_start|>")

            let metrics = try await s.request("GET", "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
            for name in ["indexmem_kv_pool_bytes", "indexmem_kv_bytes_in_use", "indexmem_queue_length", "indexmem_generated_tokens_total",
                         "indexmem_generated_tokens_per_second", "indexmem_evictions_total", "indexmem_requests_rejected_total"] {
                #expect(metrics.text.contains("\n\(name) ") || metrics.text.hasPrefix("\(name) "), "missing \(name)")
            }
            #expect(try await s.metrics()["indexmem_http_requests_total{route=\"/health\",code=\"200\"}"] == 1)
        }
    }

    @Test("greedy completion equals the library's greedy generation, with usage and cache figures")
    func completionMatchesLibrary() async throws {
        try await withServer(configure: { $0.cache = CacheConfiguration(policy: "snapkv", budget: 128) }) { s in
            let engine = try SharedEngine.get()
            let prompt = "The three primary colors are"
            let r = try await s.request("POST", "/v1/completions", json: ["prompt": prompt, "max_tokens": 12, "temperature": 0])
            #expect(r.status == 200, "\(r.text)")
            let o = try r.json()
            #expect(o["object"] as? String == "text_completion")
            let choice = try #require((o["choices"] as? [[String: Any]])?.first)
            let session = try engine.makeSession(cache: CacheConfiguration(policy: "snapkv", budget: 128))
            let ids = engine.tokenize(prompt, parseSpecial: true)
            let expected = try session.generate(prompt: ids, options: GenerationOptions(maxTokens: 12))
            #expect(choice["text"] as? String == expected.text)
            #expect(choice["finish_reason"] as? String == expected.finishReason.rawValue)
            let usage = try #require(o["usage"] as? [String: Int])
            #expect(usage["prompt_tokens"] == ids.count)
            #expect(usage["completion_tokens"] == expected.generatedTokens.count)
            #expect(usage["total_tokens"] == ids.count + expected.generatedTokens.count)
            let cache = try #require(o["kv_cache"] as? [String: Any])
            #expect(cache["policy"] as? String == "snapkv")
            #expect(cache["budget"] as? Int == 128)
        }
    }

    @Test("chat: template applied, stops at end of turn; streaming gives chunks, usage and [DONE]")
    func chatAndStreaming() async throws {
        try await withServer { s in
            let messages = [["role": "user", "content": "What is the capital of France? Answer in one word."]]
            let r = try await s.request("POST", "/v1/chat/completions", json: ["messages": messages, "max_tokens": 40, "temperature": 0])
            #expect(r.status == 200, "\(r.text)")
            let o = try r.json()
            #expect(o["object"] as? String == "chat.completion")
            let choice = try #require((o["choices"] as? [[String: Any]])?.first)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            let content = try #require(message["content"] as? String)
            #expect(content.contains("Paris"))
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(!content.contains("<|im_end|>"))

            let streamed = try await s.request("POST", "/v1/chat/completions",
                                         json: ["messages": messages, "max_tokens": 40, "temperature": 0, "stream": true,
                                                "stream_options": ["include_usage": true]])
            #expect(streamed.status == 200)
            #expect(streamed.headers["content-type"] == "text/event-stream")
            let events = streamed.events
            #expect(events.last == "[DONE]")
            var text = ""
            var finish: String? = nil
            var usage: [String: Int]? = nil
            for e in events.dropLast() {
                let chunk = try #require(try JSONSerialization.jsonObject(with: Data(e.utf8)) as? [String: Any])
                #expect(chunk["object"] as? String == "chat.completion.chunk")
                if let u = chunk["usage"] as? [String: Int] { usage = u }
                guard let c = (chunk["choices"] as? [[String: Any]])?.first else { continue }
                text += ((c["delta"] as? [String: Any])?["content"] as? String) ?? ""
                if let f = c["finish_reason"] as? String { finish = f }
            }
            #expect(text == content)
            #expect(finish == "stop")
            #expect(usage?["completion_tokens"] == (o["usage"] as? [String: Int])?["completion_tokens"])

            let completionStream = try await s.request("POST", "/v1/completions",
                                                 json: ["prompt": "One, two, three,", "max_tokens": 8, "temperature": 0, "stream": true])
            #expect(completionStream.events.last == "[DONE]")
            #expect(completionStream.events.count >= 3)
        }
    }

    @Test("stop strings end the text before them; seeds repeat; max_tokens 0 is empty")
    func samplingFields() async throws {
        try await withServer { s in
            let base: [String: Any] = ["prompt": "Count: 1, 2, 3, 4, 5,", "max_tokens": 20, "temperature": 0]
            var withStop = base
            withStop["stop"] = [" 8"]
            let full = try await s.request("POST", "/v1/completions", json: base).json()
            let cut = try await s.request("POST", "/v1/completions", json: withStop).json()
            let fullText = try #require((full["choices"] as? [[String: Any]])?.first?["text"] as? String)
            let cutText = try #require((cut["choices"] as? [[String: Any]])?.first?["text"] as? String)
            if let r = fullText.range(of: " 8") {
                #expect(cutText == String(fullText[..<r.lowerBound]))
                #expect((cut["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "stop")
            }
            var seeded = base
            seeded["temperature"] = 1.0
            seeded["seed"] = 42
            let a = try await s.request("POST", "/v1/completions", json: seeded).json()
            let b = try await s.request("POST", "/v1/completions", json: seeded).json()
            #expect((a["choices"] as? [[String: Any]])?.first?["text"] as? String == (b["choices"] as? [[String: Any]])?.first?["text"] as? String)
            var zero = base
            zero["max_tokens"] = 0
            let z = try await s.request("POST", "/v1/completions", json: zero).json()
            #expect((z["choices"] as? [[String: Any]])?.first?["text"] as? String == "")
            #expect((z["usage"] as? [String: Int])?["completion_tokens"] == 0)
        }
    }

    @Test("bad requests get OpenAI error objects with the right status")
    func errors() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 64 << 10 }) { s in
            func check(_ r: HTTPTestResponse, _ status: Int, code: String? = nil, param: String? = nil, _ comment: Comment? = nil) throws {
                #expect(r.status == status, "\(r.text)")
                let error = try #require(try r.json()["error"] as? [String: Any], "\(r.text)")
                #expect(!(error["message"] as? String ?? "").isEmpty)
                #expect(error["type"] is String)
                if let code { #expect(error["code"] as? String == code, "\(r.text)") }
                if let param { #expect(error["param"] as? String == param, "\(r.text)") }
                #expect(r.headers["content-type"] == "application/json")
            }
            let chat = "/v1/chat/completions", completions = "/v1/completions"
            try check(await s.request("POST", chat, body: "{\"messages\": [", contentType: "application/json"), 400, code: "invalid_json")
            try check(await s.request("POST", chat, body: "[1, 2]"), 400, code: "invalid_json")
            try check(await s.request("POST", chat, body: ""), 400, code: "invalid_json")
            try check(await s.request("POST", chat, json: ["messages": "hi"]), 400, param: "messages")
            try check(await s.request("POST", chat, json: ["messages": [["role": "user"]]]), 400, code: "missing_field")
            try check(await s.request("POST", chat, json: ["messages": [["role": "wizard", "content": "x"]]]), 400)
            try check(await s.request("POST", chat, json: ["messages": [["role": "user", "content": 5]]]), 400)
            try check(await s.request("POST", chat, json: ["messages": []]), 400)
            let hi = [["role": "user", "content": "hi"]]
            try check(await s.request("POST", chat, json: ["messages": hi, "model": "gpt-4"]), 404, code: "model_not_found", param: "model")
            try check(await s.request("POST", chat, json: ["messages": hi, "max_tokens": -1]), 400, param: "max_tokens")
            try check(await s.request("POST", chat, json: ["messages": hi, "max_tokens": 1_000_000_000]), 400, param: "max_tokens")
            try check(await s.request("POST", chat, json: ["messages": hi, "max_tokens": "10"]), 400, param: "max_tokens")
            try check(await s.request("POST", chat, json: ["messages": hi, "max_tokens": 1.5]), 400, param: "max_tokens")
            try check(await s.request("POST", chat, json: ["messages": hi, "temperature": true]), 400, param: "temperature")
            try check(await s.request("POST", chat, json: ["messages": hi, "temperature": 9]), 400, param: "temperature")
            try check(await s.request("POST", chat, json: ["messages": hi, "stream": "yes"]), 400, param: "stream")
            try check(await s.request("POST", chat, json: ["messages": hi, "n": 3]), 400, param: "n")
            try check(await s.request("POST", chat, json: ["messages": hi, "stop": [1]]), 400, param: "stop")
            try check(await s.request("POST", chat, json: ["messages": hi, "kv_policy": "nonsense", "kv_budget": 128]), 400)
            try check(await s.request("POST", chat, json: ["messages": hi, "kv_policy": "snapkv"]), 400, param: "kv_budget")
            try check(await s.request("POST", chat, json: ["messages": hi, "kv_policy": "snapkv", "kv_budget": 10]), 400)
            try check(await s.request("POST", chat, json: ["messages": hi, "kv_policy": "snapkv", "kv_budget": 128, "kv_ratio": 0.5]), 400)
            try check(await s.request("POST", chat, json: ["messages": hi, "kv_policy": "snapkv", "kv_mode": "sideways", "kv_budget": 128]), 400,
                      param: "kv_mode")
            try check(await s.request("POST", completions, json: ["max_tokens": 3]), 400, code: "missing_field")
            try check(await s.request("POST", completions, json: ["prompt": [1, -5]]), 400, param: "prompt")
            try check(await s.request("POST", completions, json: ["prompt": [99_999_999]]), 400, param: "prompt")
            try check(await s.request("POST", completions, json: ["prompt": "hi"], contentType: "text/plain"), 415, code: "unsupported_media_type")
            try check(await s.request("POST", completions, json: ["prompt": "hi"], contentType: nil), 415)
            try check(await s.request("POST", completions, json: ["prompt": String(repeating: "a", count: 100_000)]), 413, code: "body_too_large")
            try check(await s.request("GET", "/v2/nothing"), 404)
            try check(await s.request("GET", chat), 404)  // no GET route there

            // A prompt beyond the trained positions: llama.cpp's body, verbatim.
            let engine = try SharedEngine.get()
            let long = [Int](repeating: 28, count: engine.configuration.contextLength + 10)
            let r = try await s.request("POST", completions, json: ["prompt": long, "max_tokens": 4])
            #expect(r.status == 400)
            let error = try #require(try r.json()["error"] as? [String: Any])
            #expect(error["type"] as? String == "exceed_context_size_error")
            #expect(error["code"] as? Int == 400)
            #expect(error["n_prompt_tokens"] as? Int == long.count)
            #expect(error["n_ctx"] as? Int == engine.configuration.contextLength)

            #expect(try await s.request("GET", "/health").status == 200)
        }
    }

    @Test("a request larger than the whole pool is refused; a full queue answers 503 with Retry-After")
    func admission() async throws {
        let engine = try SharedEngine.get()
        let cache = CacheConfiguration(policy: "window", budget: 128, chunk: 128)
        let one = try cache.kvBytesBound(model: engine.configuration, promptTokens: 400, totalTokens: 600)
        try await withServer(configure: {
            $0.cache = cache
            $0.kvPoolBytes = one + one / 2  // room for one request at a time
            $0.maxQueue = 1
        }) { s in
            let full = try await s.request("POST", "/v1/completions", json: ["prompt": "hi", "kv_policy": "full", "max_tokens": 8000])
            #expect(full.status == 400)
            #expect(full.text.contains("kv_pool_exceeded"))

            let prompt = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 40)
            let results = try await withThrowingTaskGroup(of: HTTPTestResponse.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await s.request("POST", "/v1/completions", json: ["prompt": prompt, "max_tokens": 40, "temperature": 0])
                    }
                }
                var out: [HTTPTestResponse] = []
                for try await r in group { out.append(r) }
                return out
            }
            let ok = results.filter { $0.status == 200 }, busy = results.filter { $0.status == 503 }
            #expect(ok.count + busy.count == 4, "\(results.map { "\($0.status) \($0.text)" })")
            #expect(ok.count >= 2)  // one running, one queued
            #expect(busy.count >= 1)
            for b in busy {
                #expect(Int(b.headers["retry-after"] ?? "") ?? 0 >= 1)
                #expect(b.text.contains("queue_full"))
            }
            let m = try await s.metrics()
            #expect((m["indexmem_kv_bytes_reserved_max"] ?? .infinity) <= Double(s.server.poolBytes))
            #expect((m["indexmem_kv_bytes_in_use_max"] ?? .infinity) <= Double(s.server.poolBytes))
            #expect(m["indexmem_requests_rejected_total"] == Double(busy.count))
        }
    }

    @Test("a client that hangs up frees its session and reservation at once")
    func disconnectFreesMemory() async throws {
        try await withServer(configure: { $0.cache = CacheConfiguration(policy: "window", budget: 128) }) { s in
            for (i, stream) in [true, false].enumerated() {
                let body = try JSONSerialization.data(withJSONObject: [
                    "prompt": "Write a very long story about a dragon.", "max_tokens": 4000, "temperature": 0.8, "stream": stream,
                    "ignore_eos": true,  // so it cannot end by itself before the hang-up
                ] as [String: Any])
                let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
                let fd = try HTTPTestClient.connect(port: s.port, timeout: 60)
                HTTPTestClient.send(fd, Array(head.utf8) + Array(body))
                // Wait until it holds KV memory and has generated, then hang up.
                let generating = try await eventually(120) {
                    let m = try await s.metrics()
                    return (m["indexmem_kv_bytes_in_use"] ?? 0) > 0 && m["indexmem_requests_admitted_total"] == Double(i + 1)
                }
                #expect(generating, "stream \(stream): the request never started")
                close(fd)
                let closed = Date()
                let freed = try await eventually(60) {
                    let m = try await s.metrics()
                    return m["indexmem_requests_cancelled_total"] == Double(i + 1) && m["indexmem_requests_active"] == 0
                        && m["indexmem_kv_bytes_in_use"] == 0 && m["indexmem_kv_bytes_reserved"] == 0
                }
                let kv = try await s.metrics().filter { $0.key.contains("kv_bytes") || $0.key.hasPrefix("indexmem_requests_") }
                #expect(freed, "stream \(stream), \(Date().timeIntervalSince(closed)) s after the hang-up: \(kv.sorted { $0.key < $1.key })")
            }
            #expect(try await s.request("GET", "/health").status == 200)
        }
    }
}
