// IndexMem — server tests. Apache-2.0.
//
// A request's policy spec is parsed once, where the request is parsed: the cache plan it
// becomes is what the reservation, the session and its caches read. A registered policy
// counts how often its spec is resolved.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemServer
import IndexMemTestSupport
import Synchronization
import Testing

/// A policy (the window's scorer) that counts its resolutions.
enum CountedPolicy {
    static let resolutions = Mutex<[String: Int]>([:])

    /// Registers `name` (once per name) and returns how often it has been resolved so far.
    static func register(_ name: String) -> Int {
        PolicyRegistry.register(PolicyDefinition(name: name, summary: "window, counting its resolutions", keeps: "as window") {
            _ throws(PolicyError) in
            resolutions.withLock { $0[name, default: 0] += 1 }
            return ResolvedPolicy(scorer: WindowPolicy())
        })
        return count(name)
    }

    static func count(_ name: String) -> Int { resolutions.withLock { $0[name] ?? 0 } }
}

@Suite("A request's policy spec is parsed once")
struct ParseOnceTests {
    @Test("parsing, reserving and serving a request resolve kv_policy once")
    func oncePerRequest() throws {
        let engine = try SharedEngine.get()
        let name = "test-counted-request"
        let before = CountedPolicy.register(name)
        let parser = RequestParser(engine: engine, options: ServerOptions(), modelID: "m")
        let body = JSONObject(fields: ["prompt": .string("Rivers flow to the sea and the sea gives rain back to rivers."),
                                       "kv_policy": .string(name), "kv_budget": .number(80), "max_tokens": .number(4),
                                       "temperature": .number(0)])
        let request = try parser.parse(body, endpoint: .completion).generation
        #expect(CountedPolicy.count(name) - before == 1)
        #expect(request.reservation == request.cache.kvBytesBound(model: engine.configuration, promptTokens: request.promptTokens.count,
                                                                  totalTokens: request.promptTokens.count + 4))
        let session = try engine.makeSession(cache: request.cache)
        let result = try session.generate(prompt: request.promptTokens, options: GenerationOptions(maxTokens: 4, stopAtEndOfTurn: false))
        #expect(result.generatedTokens.count == 4 && result.cache.policy == "window")
        #expect(CountedPolicy.count(name) - before == 1, "the plan was resolved again after the request was parsed")
    }
}
