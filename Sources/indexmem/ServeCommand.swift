// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem
import IndexMemServer

// MARK: - serve

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API with a bounded KV pool.",
        discussion: """
            Routes: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions (both with \
            "stream": true), POST /tokenize, POST /detokenize, GET /metrics (Prometheus). Requests may set \
            kv_policy, kv_budget or kv_ratio, kv_mode, kv_sinks, kv_window, kv_memory, kv_type; the cache options below are their defaults. \
            A request is admitted when its KV reservation fits the pool; others wait in a bounded queue, and a full \
            queue answers 503 with Retry-After. SIGTERM or SIGINT stops admission, lets running requests finish \
            (--shutdown-grace seconds), then exits.
            """)

    /// The server's own defaults, which the options below fall back to.
    private static let defaults = ServerOptions()

    @OptionGroup var model: ModelArguments
    @OptionGroup var cache: CacheArguments

    @Option(name: .long, help: "Address to bind (default: $INDEXMEM_HOST, else \(ServeCommand.defaults.host)).") var host: String?
    @Option(name: .long, help: "TCP port, 0 for any free one (default: $INDEXMEM_PORT, else \(ServeCommand.defaults.port)).") var port: Int?
    @Option(name: .long, help: "Global KV byte pool, e.g. 256M or 1G (default: $INDEXMEM_KV_POOL_BYTES, else 4 full-context sequences).")
    var kvPoolBytes: String?
    @Option(name: .long, help: "Requests that may wait for KV memory before 503.") var maxQueue: Int = ServeCommand.defaults.maxQueue
    @Option(name: .long, help: "Requests that run at once (each has a session and a few MB of scratch).")
    var maxActive: Int = ServeCommand.defaults.maxActive
    @Option(name: .long, help: "Token rows per batched step: each decoding request's next token plus prompt chunks up to this total (at least one chunk).")
    var maxBatchTokens: Int = ServeCommand.defaults.maxBatchTokens
    @Option(name: .long, help: "Largest request body, e.g. 4M.") var maxBodyBytes: String = String(ServeCommand.defaults.maxBodyBytes)
    @Option(name: .long, help: "Largest text /tokenize reads or /detokenize returns, e.g. 1M (413 above).")
    var maxTokenizeBytes: String = String(ServeCommand.defaults.maxTokenizeBytes)
    @Option(name: .long, help: "/tokenize and /detokenize requests that run at once (more wait, up to --max-queue).")
    var maxTokenizeActive: Int = ServeCommand.defaults.maxTokenizeActive
    @Option(name: .long, help: "max_tokens of a request that gives none.") var defaultMaxTokens: Int = ServeCommand.defaults.defaultMaxTokens
    @Option(name: .long, help: "The model id clients use (default: the file name without .gguf).") var alias: String?
    @Option(name: .long, help: "Seconds running requests get to finish on SIGTERM/SIGINT.")
    var shutdownGrace: Double = ServeCommand.defaults.shutdownGraceSeconds

    func validate() throws {
        if let p = resolvedPort(), !(0...65535).contains(p) { throw ValidationError("--port must be in 0...65535") }
        if maxQueue < 0 { throw ValidationError("--max-queue must not be negative") }
        if maxActive < 1 { throw ValidationError("--max-active must be at least 1") }
        if maxBatchTokens < 1 { throw ValidationError("--max-batch-tokens must be at least 1") }
        if defaultMaxTokens < 0 { throw ValidationError("--default-max-tokens must not be negative") }
        if shutdownGrace < 0 { throw ValidationError("--shutdown-grace must not be negative") }
        _ = try bodyBytes()
        _ = try tokenizeBytes()
        if maxTokenizeActive < 1 { throw ValidationError("--max-tokenize-active must be at least 1") }
        if let text = resolvedPool(), (ServerOptions.parseBytes(text) ?? 0) <= 0 {
            throw ValidationError("--kv-pool-bytes: not a positive byte count: \(text) (e.g. 268435456, 256M, 1G)")
        }
    }

    private var environment: [String: String] { ProcessInfo.processInfo.environment }
    private func resolvedPort() -> Int? { port ?? environment["INDEXMEM_PORT"].flatMap { Int($0) } }
    private func resolvedPool() -> String? { kvPoolBytes ?? environment["INDEXMEM_KV_POOL_BYTES"].flatMap { $0.isEmpty ? nil : $0 } }
    private func bodyBytes() throws -> Int {
        guard let bytes = ServerOptions.parseBytes(maxBodyBytes) else { throw ValidationError("--max-body-bytes: not a byte count: \(maxBodyBytes)") }
        return bytes
    }

    private func tokenizeBytes() throws -> Int {
        guard let bytes = ServerOptions.parseBytes(maxTokenizeBytes), bytes > 0 else {
            throw ValidationError("--max-tokenize-bytes: not a positive byte count: \(maxTokenizeBytes)")
        }
        return bytes
    }

    func run() async throws {
        var options = Self.defaults
        options.host = host ?? environment["INDEXMEM_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? options.host
        options.port = resolvedPort() ?? options.port
        options.cache = try cache.configuration()
        options.kvPoolBytes = resolvedPool().flatMap(ServerOptions.parseBytes)
        options.maxQueue = maxQueue
        options.maxActive = maxActive
        options.maxBatchTokens = maxBatchTokens
        options.maxBodyBytes = try bodyBytes()
        options.maxTokenizeBytes = try tokenizeBytes()
        options.maxTokenizeActive = maxTokenizeActive
        options.defaultMaxTokens = defaultMaxTokens
        options.modelAlias = alias
        options.shutdownGraceSeconds = shutdownGrace
        // Resolved once by the server (a learned default policy without its adapter is refused there).
        let engine = try model.loadEngine(progress: true)
        let server = try InferenceServer(engine: engine, options: options)
        try await server.run()
    }
}
