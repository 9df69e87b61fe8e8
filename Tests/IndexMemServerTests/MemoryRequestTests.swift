// IndexMem — server tests. Apache-2.0.
//
// `kv_memory` per request: the shipped adapter's latent memory switched on for an evicting
// policy, its bytes reserved from the KV pool with the entries', and clear 400s where it
// cannot run (an unknown mode, the full cache, an adapter without a memory).

import Foundation
import IndexMem
import IndexMemSafetensors
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("kv_memory in a request")
struct MemoryRequestTests {
    static func body(_ fields: [String: JSONValue]) -> JSONObject {
        var all: [String: JSONValue] = ["prompt": .string("Rivers flow to the sea and the sea gives rain back to rivers."),
                                        "max_tokens": .number(4), "temperature": .number(0)]
        for (k, v) in fields { all[k] = v }
        return JSONObject(fields: all)
    }

    static func rejected(_ parser: RequestParser, _ fields: [String: JSONValue]) -> APIError? {
        do {
            _ = try parser.parse(body(fields), endpoint: .completion)
            return nil
        } catch let e as APIError {
            return e
        } catch {
            return nil
        }
    }

    @Test("the memory is switched on per request, reserved with the KV bytes, and reported")
    func switchedOn() throws {
        let engine = try SharedEngine.get()
        let parser = RequestParser(engine: engine, options: ServerOptions(), modelID: "m")
        let request = try parser.parse(Self.body(["kv_policy": .string("snapkv"), "kv_budget": .number(80), "kv_window": .number(16),
                                                  "kv_memory": .string("on")]), endpoint: .completion).generation
        let memory = request.cache.memoryBytesBound
        #expect(memory > 0)
        #expect(request.reservation == request.cache.kvBytesBound(model: engine.configuration, promptTokens: request.promptTokens.count,
                                                                  totalTokens: request.promptTokens.count + 4) + memory)
        let session = try engine.makeSession(cache: request.cache)
        let result = try session.generate(prompt: request.promptTokens, options: GenerationOptions(maxTokens: 4, stopAtEndOfTurn: false))
        #expect(result.generatedTokens.count == 4)
        #expect(session.cacheReport().memoryBytes == memory, "the state is the size the reservation counted")
        let off = try parser.parse(Self.body(["kv_policy": .string("snapkv"), "kv_budget": .number(80)]), endpoint: .completion).generation
        #expect(off.cache.memoryBytesBound == 0)
    }

    @Test("an unknown mode, the full cache and an adapter without memory are 400s naming kv_memory")
    func refused() throws {
        let engine = try SharedEngine.get()
        let parser = RequestParser(engine: engine, options: ServerOptions(), modelID: "m")
        let unknown = Self.rejected(parser, ["kv_policy": .string("snapkv"), "kv_budget": .number(80), "kv_memory": .string("maybe")])
        #expect(unknown?.param == "kv_memory" && unknown?.status.code == 400)
        let full = Self.rejected(parser, ["kv_memory": .string("on")])
        #expect(full?.param == "kv_memory" && full?.message.contains("full cache") == true)

        // The shipped adapter without its memory tensors.
        let shipped = try engine.indexer().path
        var file = try Safetensors(path: shipped)
        for name in file.tensors.keys where name.hasPrefix("memory.") { file.tensors[name] = nil }
        file.metadata["memory_rank"] = nil
        let bare = FileManager.default.temporaryDirectory.appendingPathComponent("no-memory-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
        try file.write(to: bare)
        defer { try? FileManager.default.removeItem(atPath: bare) }
        var options = ServerOptions()
        options.cache.adapter = bare
        let other = RequestParser(engine: engine, options: options, modelID: "m")
        let missing = Self.rejected(other, ["kv_policy": .string("tova"), "kv_budget": .number(80), "kv_memory": .string("on")])
        #expect(missing?.param == "kv_memory" && missing?.message.contains("indexmem train memory") == true, "\(String(describing: missing))")
    }
}
