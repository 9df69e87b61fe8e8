// IndexMem — server tests. Apache-2.0.
//
// A multi-turn chat far past the KV budget keeps answering with its template intact: the
// recent window grows to cover the last turn, so that turn's template tokens
// (`<|im_start|>user ... <|im_end|>\n<|im_start|>assistant\n`) are still in every layer's
// cache when generation starts, and generation ends at the end-of-turn token.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("Long chats past the budget", .serialized)
struct LongChatTests {
    /// A conversation of about 1,500 tokens whose last user turn (about 150 tokens) is longer
    /// than the default recent window (64).
    static func conversation() -> [[String: String]] {
        let facts = [
            "The Nile is a major river in northeastern Africa and flows north into the Mediterranean Sea.",
            "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
            "The Pacific Ocean is the largest and deepest of the world's oceans.",
            "The Sahara is a desert spanning much of North Africa.",
            "Jupiter is the largest planet in the Solar System.",
            "The Amazon rainforest covers much of the Amazon basin of South America.",
        ]
        var messages: [[String: String]] = [["role": "system", "content": "You are a helpful assistant."]]
        for round in 0..<12 {
            let text = (0..<3).map { facts[($0 + round) % facts.count] }.joined(separator: " ")
            messages.append(["role": "user", "content": "Here are some notes, part \(round + 1): \(text) Please summarise them."])
            messages.append(["role": "assistant", "content": "Summary of part \(round + 1): \(text)"])
        }
        let filler = (0..<4).map { facts[$0] }.joined(separator: " ")
        messages.append(["role": "user", "content": "Some more background: \(filler) Now a short question. What is the capital of France?"])
        return messages
    }

    @Test("the last turn's template tokens stay in every layer's cache; generation stops at <|im_end|>")
    func templateTokensKept() throws {
        let engine = try SharedEngine.get()
        var options = ServerOptions()
        options.cache = CacheConfiguration(policy: "snapkv", budget: 256)
        let parser = RequestParser(engine: engine, options: options, modelID: "m")
        let body = JSONObject(fields: ["messages": .array(Self.conversation().map { m in .object(m.mapValues { .string($0) }) }),
                                       "temperature": .number(0), "max_tokens": .number(64)])
        let parsed = try parser.parse(body, endpoint: .chat)
        let prompt = parsed.generation.promptTokens
        let cache = parsed.generation.cache
        #expect(prompt.count > 4 * 256, "the conversation must run well past the budget (\(prompt.count) tokens)")

        // The last turn, as tokens: from its <|im_start|> to the assistant header.
        let imStart = try #require(engine.tokenizer.tokenId(of: "<|im_start|>"))
        let lastStart = try #require(prompt.lastIndex(where: { $0 == imStart }).flatMap { i in prompt[..<i].lastIndex(of: imStart) })
        let lastTurn = prompt.count - lastStart
        #expect(lastTurn > 64, "the last turn (\(lastTurn) tokens) must be longer than the default window")
        #expect(cache.window >= lastTurn && cache.sinks + cache.window <= 256)

        // As the scheduler runs it: prepare, prefill chunk by chunk.
        let session = try engine.makeSession(cache: cache)
        try prefillInChunks(session, prompt, chunk: cache.chunk)
        let needed = Set(Int32(lastStart)..<Int32(prompt.count))
        for (layer, c) in session.layerCaches.enumerated() {
            let bounded = try #require(c as? BoundedLayerCache)
            #expect(bounded.count <= 256 + cache.chunk)
            for head in 0..<bounded.storage.kvHeads {
                let positions = Set((0..<bounded.storage.counts[head]).map { bounded.storage.positions(head: head)[$0] })
                #expect(needed.isSubset(of: positions), "layer \(layer) head \(head) lost \(needed.subtracting(positions).sorted().prefix(5))")
                #expect(positions.count <= 256)
            }
        }
        #expect(session.cacheReport().evictions > 0)
    }

    @Test("over HTTP: three more turns past the budget, each answered and ended at end of turn")
    func multiTurnOverHTTP() async throws {
        try await withServer(configure: { $0.cache = CacheConfiguration(policy: "snapkv", budget: 256) }) { s in
            var messages = Self.conversation()
            let questions = ["What is the largest planet in the Solar System?", "Which ocean is the largest?"]
            for turn in 0..<3 {
                let r = try await s.request("POST", "/v1/chat/completions", json: ["messages": messages, "max_tokens": 96, "temperature": 0])
                #expect(r.status == 200, "\(r.text)")
                let o = try r.json()
                let choice = try #require((o["choices"] as? [[String: Any]])?.first)
                let content = try #require((choice["message"] as? [String: Any])?["content"] as? String)
                #expect(choice["finish_reason"] as? String == "stop", "turn \(turn) did not end at end of turn: \(content)")
                #expect(!content.isEmpty && !content.contains("<|im_start|>") && !content.contains("<|im_end|>"))
                let cache = try #require(o["kv_cache"] as? [String: Any])
                #expect((cache["evictions"] as? Int ?? 0) > 0)
                let usage = try #require(o["usage"] as? [String: Int])
                #expect(usage["prompt_tokens"]! > 1000)
                if turn == 0 { #expect(content.contains("Paris"), "\(content)") }
                if turn == 1 { #expect(content.contains("Jupiter"), "\(content)") }
                if turn == 2 { #expect(content.contains("Pacific"), "\(content)") }
                messages.append(["role": "assistant", "content": content])
                if turn < questions.count { messages.append(["role": "user", "content": questions[turn]]) }
            }
        }
    }
}
