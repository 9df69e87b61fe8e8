// IndexMem — model tests. Apache-2.0.
//
// The command line on every architecture: `indexmem info` and `indexmem generate` on the tiny
// qwen2, qwen3, mistral and llama 3 files and on Gemma 3 270M, and the refusal of an unknown
// architecture naming it. They run the `indexmem` executable that `swift test` builds beside
// the test bundle.

import Foundation
import IndexMemTestSupport
import Testing

/// Runs the built `indexmem` executable.
enum CommandLine {
    typealias Failure = ChildProcess.Failure

    static func executable() throws -> String { try ChildProcess.indexmemExecutable() }

    /// Runs `indexmem arguments`; returns (exit status, stdout, stderr).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try ChildProcess.run(try executable(), arguments)
    }

    /// Runs a command that prints one JSON object and returns it.
    static func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try run(arguments)
        guard result.status == 0 else {
            throw Failure("indexmem \(arguments.joined(separator: " ")) exited \(result.status): \(result.error)")
        }
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8))
        guard let dictionary = object as? [String: Any] else { throw Failure("not a JSON object: \(result.output)") }
        return dictionary
    }
}

@Suite("indexmem info and generate on every architecture", .serialized)
struct CommandLineTests {
    /// (model file, `general.architecture`) for each architecture.
    static func models() throws -> [(path: String, architecture: String)] {
        let tiny = try TinyModels.names.map { name in
            (try TinyModels.write(name), name == "qwen2" || name == "qwen3" ? name : "llama")
        }
        return tiny + [(try requireGemmaModel(), "gemma3")]
    }

    @Test("info and generate --json work on qwen2, qwen3, mistral, llama 3 and gemma3")
    func infoAndGenerate() throws {
        for (path, architecture) in try Self.models() {
            let info = try CommandLine.json(["info", "--model", path, "--json"])
            #expect(info["architecture"] as? String == architecture, "\(path): \(info["architecture"] ?? "none")")
            let generated = try CommandLine.json(["generate", "--model", path, "--prompt", "Hello there", "--max-tokens", "4",
                                                  "--threads", "2", "--json"])
            let ids = generated["generated_token_ids"] as? [Int] ?? []
            #expect(!ids.isEmpty && ids.count <= 4, "\(path): generated \(ids)")
            let model = generated["model"] as? [String: Any]
            #expect(model?["architecture"] as? String == architecture)
        }
    }

    @Test("generate --json on Gemma with a budget reports the sliding layers and the budgeted ones")
    func gemmaBudgetReport() throws {
        let generated = try CommandLine.json(["generate", "--model", try requireGemmaModel(), "--prompt", "Why is the sky blue?",
                                              "--max-tokens", "4", "--policy", "h2o", "--budget", "96", "--sinks", "4",
                                              "--window", "16", "--threads", "2", "--json"])
        let cache = try #require(generated["cache"] as? [String: Any])
        #expect(cache["sliding_layers"] as? Int == 15 && cache["sliding_window"] as? Int == 512)
        #expect(cache["budgeted_layers"] as? Int == 3 && cache["budget"] as? Int == 96)
    }

    @Test("an unknown architecture is refused on the command line with its name")
    func unknownArchitecture() throws {
        let path = try TinyModels.write("qwen2", variant: "-phi3", override: ["general.architecture": .string("phi3")])
        for arguments in [["info", "--model", path], ["generate", "--model", path, "--prompt", "Hi"]] {
            let result = try CommandLine.run(arguments)
            #expect(result.status != 0)
            #expect(result.error.contains("'phi3'"), "\(arguments[0]): \(result.error)")
        }
    }
}
