// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem

// MARK: - Root command

@main
struct IndexMemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "indexmem",
        abstract: "Run GGUF language models with a bounded KV cache.",
        subcommands: [GenerateCommand.self, InfoCommand.self, BenchCommand.self, EvalCommand.self, TrainCommand.self, ServeCommand.self,
                      PoliciesCommand.self])
}

// MARK: - Shared argument groups

struct ModelArguments: ParsableArguments {
    @Option(name: .long, help: "Path to a GGUF model (default: $INDEXMEM_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf).")
    var model: String?

    @Option(name: .long, help: "Threads to use (default: $INDEXMEM_THREADS, else all cores).")
    var threads: Int?

    static let defaultModelName = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The model path: the flag, the environment, the working directory, or beside the binary.
    func resolvedModelPath() -> String {
        if let model { return model }
        let env = ProcessInfo.processInfo.environment
        if let m = env["INDEXMEM_MODEL"], !m.isEmpty { return m }
        if FileManager.default.fileExists(atPath: Self.defaultModelName) { return Self.defaultModelName }
        // .build/<config>/indexmem -> repository root.
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let root = binary.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.appendingPathComponent(Self.defaultModelName).path
        return FileManager.default.fileExists(atPath: candidate) ? candidate : Self.defaultModelName
    }

    func resolvedThreads() -> Int? {
        threads ?? ProcessInfo.processInfo.environment["INDEXMEM_THREADS"].flatMap { Int($0) }
    }

    func validate() throws {
        if let t = threads, t < 1 || t > 256 { throw ValidationError("--threads must be in 1...256") }
    }

    func loadEngine(progress: Bool) throws -> Engine {
        let path = resolvedModelPath()
        if progress { Terminal.status("loading \(path)…") }
        let engine = try Engine(path: path, threads: resolvedThreads())
        if progress { Terminal.clearStatus() }
        return engine
    }
}

struct CacheArguments: ParsableArguments {
    @Option(name: .long, help: "Eviction policy, NAME[:opt=val,...] (\(CachePolicy.available.map(\.name).joined(separator: ", ")); see `indexmem policies`).")
    var policy: String = "full"

    @Option(name: .long, help: "KV entries kept per layer and KV head.")
    var budget: Int?

    @Option(name: .long, help: "KV budget as a fraction of the context.")
    var ratio: Double?

    @Option(name: .long, help: "bounded | prefill-then-compress")
    var mode: String = "bounded"

    @Option(name: .long, help: "Protected first tokens.")
    var sinks: Int = 4

    @Option(name: .long, help: "Protected recent tokens.")
    var window: Int = 64

    @Option(name: .long, help: "Prefill chunk size in tokens.")
    var chunk: Int = 256

    @Option(name: .long, help: "Indexer adapter for --policy indexmem / indexmem-static (default: adapters/<model file>.indexmem.safetensors).")
    var adapter: String?

    @Option(name: .long, help: "Latent memory of evicted entries, from the adapter: off | on (trained gate) | softmax (closed form, memory-softmax).")
    var memory: String = "off"

    @Option(name: .long, help: "How keys and values are stored: f16 | q8_0 (llama.cpp's Q8_0 blocks, 0.53x the bytes).")
    var kvType: String = "f16"

    /// The options as given (the server resolves them itself).
    func configuration() throws -> CacheConfiguration {
        guard let m = CacheConfiguration.Mode(rawValue: mode) else {
            throw ValidationError("--mode must be one of: \(CacheConfiguration.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return CacheConfiguration(policy: policy, budget: budget, ratio: ratio, mode: m, sinks: sinks, window: window, chunk: chunk,
                                  adapter: adapter, memory: try MemoryMode(parsing: memory), kvType: try KVEntryType(parsing: kvType))
    }

    /// The options resolved: the command's one parse of the policy spec.
    func plan() throws -> CachePlan { try configuration().resolve() }
}

// MARK: - Terminal

enum Terminal {
    static let isInteractive = isatty(STDERR_FILENO) != 0

    static func status(_ text: String) {
        guard isInteractive else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }

    static func clearStatus() {
        guard isInteractive else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func progress(_ label: String) -> ((Int, Int) -> Void)? {
        guard isInteractive else { return nil }
        return { done, total in
            let width = 30
            let filled = total > 0 ? width * done / total : width
            status("\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)")
            if done >= total { clearStatus() }
        }
    }

    static func writeOut(_ s: String) {
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}

/// Prints one JSON value as a line on stdout.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
    Terminal.writeOut(String(decoding: data, as: UTF8.self) + "\n")
}

extension CacheReport {
    var json: [String: Any] {
        ["policy": policy, "mode": mode, "budget": budget.map { $0 as Any } ?? NSNull(),
         "kv_bytes": kvBytes, "kv_bytes_peak": kvBytesPeak, "kv_bytes_full_cache": kvBytesFullCache,
         "memory_bytes": memoryBytes, "policy_bytes": policyBytes, "evictions": evictions, "entries": entries,
         "sliding_layers": slidingLayers, "sliding_window": slidingWindow.map { $0 as Any } ?? NSNull(),
         "budgeted_layers": budgetedLayers, "indexer_bytes": indexerBytes, "kv_type": kvType]
    }
}

extension GenerationTimings {
    var json: [String: Any] {
        ["prefill_seconds": prefillSeconds, "decode_seconds": decodeSeconds,
         "prefill_tokens": prefillTokens, "decode_tokens": decodeTokens,
         "prefill_tokens_per_second": prefillTokensPerSecond, "decode_tokens_per_second": decodeTokensPerSecond]
    }
}
