// IndexMem — server tests. Apache-2.0.
//
// `kv_type` per request (and `--kv-type` as the server's default): a q8_0 request runs,
// reserves 34/64 of the f16 request's KV bytes from the pool, reports its type; an unknown
// type is a 400 naming `kv_type`.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("Q8KV kv_type in a request")
struct Q8KVRequestTests {
    static func body(_ fields: [String: JSONValue]) -> JSONObject {
        var all: [String: JSONValue] = ["prompt": .string("Rivers flow to the sea and the sea gives rain back to rivers."),
                                        "max_tokens": .number(4), "temperature": .number(0)]
        for (k, v) in fields { all[k] = v }
        return JSONObject(fields: all)
    }

    @Test("kv_type q8_0 reserves 34/64 of f16's bytes; an unknown type is a 400 naming kv_type")
    func parsed() throws {
        let engine = try SharedEngine.get()
        let parser = RequestParser(engine: engine, options: ServerOptions(), modelID: "m")
        let policy: [String: JSONValue] = ["kv_policy": .string("snapkv"), "kv_budget": .number(80), "kv_window": .number(16)]
        let f16 = try parser.parse(Self.body(policy), endpoint: .completion).generation
        let q8 = try parser.parse(Self.body(policy.merging(["kv_type": .string("q8_0")]) { $1 }), endpoint: .completion).generation
        #expect(f16.cache.kvType == .f16 && q8.cache.kvType == .q8_0)
        #expect(q8.reservation * 64 == f16.reservation * 34)
        var refused: APIError? = nil
        do { _ = try parser.parse(Self.body(["kv_type": .string("q4_0")]), endpoint: .completion) } catch { refused = error }
        let e = try #require(refused, "an unknown kv_type was accepted")
        #expect(e.status.code == 400 && e.param == "kv_type")
        #expect(e.message.contains("f16, q8_0") && e.message.contains("'q4_0'"), "\(e.message)")
        // The server's default follows --kv-type; a request may go back to f16.
        var options = ServerOptions()
        options.cache.kvType = .q8_0
        let defaulted = RequestParser(engine: engine, options: options, modelID: "m")
        #expect(try defaulted.parse(Self.body([:]), endpoint: .completion).generation.cache.kvType == .q8_0)
        #expect(try defaulted.parse(Self.body(["kv_type": .string("f16")]), endpoint: .completion).generation.cache.kvType == .f16)
    }

    @Test("a q8_0 completion over HTTP runs and reports kv_type and its bytes")
    func overHTTP() async throws {
        try await withServer { s in
            let r = try await s.request("POST", "/v1/completions", json: ["prompt": "The three primary colors are", "max_tokens": 8,
                                                                          "temperature": 0, "kv_type": "q8_0", "kv_policy": "h2o",
                                                                          "kv_budget": 96, "kv_window": 16])
            #expect(r.status == 200, "\(r.text)")
            let cache = try #require(try r.json()["kv_cache"] as? [String: Any])
            #expect(cache["kv_type"] as? String == "q8_0")
            let peak = try #require(cache["kv_bytes_peak"] as? Int)
            #expect(peak > 0 && peak <= (cache["kv_bytes_reserved"] as? Int ?? 0))
            let bad = try await s.request("POST", "/v1/completions", json: ["prompt": "x", "kv_type": "int4"])
            #expect(bad.status == 400)
            #expect(bad.text.contains("kv_type") && bad.text.contains("int4"), "\(bad.text)")
        }
    }
}
