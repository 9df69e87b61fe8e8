// IndexMem — server. Apache-2.0.
//
// The HTTP side: routes named as llama.cpp's server names them, one middleware that turns
// every error into OpenAI's error object (so no request can end in an empty 500 or a crash),
// and the scheduler as a service of the same group, so SIGTERM/SIGINT first stop admission
// and let running requests finish (or cut them after the grace period), then close the
// listener.

import Foundation
import HTTPTypes
import Hummingbird
import IndexMem
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import UnixSignals

// MARK: - Server

/// An OpenAI-compatible HTTP server for one model, with a global KV byte pool.
public final class InferenceServer: Sendable {
    public let engine: Engine
    public let options: ServerOptions
    /// The id clients send as `model`.
    public let modelID: String
    /// The KV pool in bytes.
    public let poolBytes: Int
    let scheduler: Scheduler
    let metrics = ServerMetrics()
    let parser: RequestParser
    /// `options.cache`, resolved and bound once: what a request that changes nothing runs with.
    let defaultPlan: CachePlan
    let created = Int(Date().timeIntervalSince1970)
    /// The running service group (for a shutdown started from code, as a signal would).
    private let group = Mutex<ServiceGroup?>(nil)
    /// At most this many /tokenize and /detokenize requests run at once (their memory is
    /// bounded per request by `maxTokenizeBytes`; this bounds it in total).
    let textWork: WorkLimiter

    /// - Throws: `APIError` for impossible options, `CacheConfigurationError` for impossible
    ///   cache defaults, `AdapterError` when a learned default policy has no adapter (refused
    ///   at start rather than on every request).
    public init(engine: Engine, options: ServerOptions) throws {
        self.engine = engine
        self.options = options
        let file = RequestParser.fileName(engine.path)
        modelID = options.modelAlias ?? (file.hasSuffix(".gguf") ? String(file.dropLast(5)) : file)
        poolBytes = options.resolvedPoolBytes(model: engine.configuration)
        guard poolBytes > 0 else { throw APIError.invalidRequest("the KV pool must be positive") }
        guard options.maxQueue >= 0, options.maxActive >= 1 else { throw APIError.invalidRequest("max queue >= 0 and max active >= 1") }
        guard options.maxBatchTokens >= 1 else { throw APIError.invalidRequest("max batch tokens must be at least 1") }
        defaultPlan = try engine.bind(options.cache.resolve())
        scheduler = Scheduler(engine: engine, poolBytes: poolBytes, maxQueue: options.maxQueue, maxActive: options.maxActive,
                              maxBatchTokens: options.maxBatchTokens, metrics: metrics)
        parser = RequestParser(engine: engine, options: options, modelID: modelID, defaultPlan: defaultPlan)
        textWork = WorkLimiter(limit: max(1, options.maxTokenizeActive), maxWaiting: options.maxQueue)
    }

    /// Starts the graceful shutdown SIGTERM starts: admission stops (queued requests get
    /// 503), running ones get `shutdownGraceSeconds`, then the listener closes.
    public func shutDownGracefully() async {
        if let group = group.withLock({ $0 }) { await group.triggerGracefulShutdown() }
    }

    /// Serves until SIGTERM/SIGINT (graceful) or until the task is cancelled.
    /// - Parameters:
    ///   - signals: signals that start a graceful shutdown (none in tests).
    ///   - onListening: called with the bound port once the server accepts connections.
    public func run(gracefulShutdownSignals signals: [UnixSignal] = [.sigterm, .sigint], logger: Logger? = nil,
                    onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var configured = logger ?? Logger(label: "indexmem.serve")
        if logger == nil { configured.logLevel = .info }
        let log = configured
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(
                idleTimeout: .seconds(120),
                httpDecoderConfiguration: .init(maxHeaderFieldSize: options.maxHeaderBytes, maxHeaderListSize: options.maxHeaderBytes,
                                                maxHeaderFieldCount: 200))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "indexmem"),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? options.port
                log.info("\(startupLine(port: port))")
                await onListening(port)
            },
            logger: log)
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: app),
                .init(service: SchedulerService(scheduler: scheduler, grace: options.shutdownGraceSeconds, logger: log)),
            ],
            gracefulShutdownSignals: signals, logger: log))
        self.group.withLock { $0 = group }
        try await group.run()
    }

    /// What the startup log says.
    func startupLine(port: Int) -> String {
        let c = defaultPlan
        let policy = c.isFull ? "full cache" : "policy \(c.policySpec), " + (c.budget.map { "budget \($0)" } ?? "ratio \(c.ratio ?? 0)") + ", \(c.mode.rawValue)"
        let cache = policy + (c.kvType == .f16 ? "" : ", \(c.kvType.rawValue) KV entries")
        let perRequest = c.kvBytesBound(model: engine.configuration, promptTokens: engine.configuration.contextLength,
                                        totalTokens: engine.configuration.contextLength)
        let fits = perRequest > 0 ? " (\(poolBytes / perRequest) full-context requests at the default cache settings)" : ""
        return "indexmem serve: listening on http://\(options.host.contains(":") ? "[\(options.host)]" : options.host):\(port)"
            + " model \(modelID) (\(engine.path), \(engine.configuration.architecture), ctx \(engine.configuration.contextLength))"
            + ", KV pool \(poolBytes) bytes (\(String(format: "%.1f", Double(poolBytes) / 1048576)) MiB)\(fits)"
            + ", default \(cache), at most \(options.maxActive) running (batched steps of up to \(options.maxBatchTokens) tokens) and \(options.maxQueue) queued"
    }

    // MARK: - Routes

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorMiddleware(metrics: metrics))
        router.get("/health") { _, _ in Self.json(["status": "ok"]) }
        // Load balancers probe with HEAD: the same status, no body.
        router.head("/health") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"]) }
        router.get("/v1/models") { [self] _, _ in
            Self.json(["object": "list", "data": [modelObject()]])
        }
        router.get("/v1/models/:id") { [self] _, context in
            let id = context.parameters.get("id") ?? ""
            guard parser.accepts(model: id) else { throw APIError.modelNotFound(id) }
            return Self.json(modelObject())
        }
        router.get("/metrics") { [self] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.post("/tokenize") { [self] request, _ in try await tokenize(request) }
        router.post("/detokenize") { [self] request, _ in try await detokenize(request) }
        router.post("/v1/completions") { [self] request, _ in try await generate(request, endpoint: .completion) }
        router.post("/v1/chat/completions") { [self] request, _ in try await generate(request, endpoint: .chat) }
        return router
    }

    private func modelObject() -> [String: Any] {
        let c = engine.configuration
        return ["id": modelID, "object": "model", "created": created, "owned_by": "indexmem",
                "meta": ["architecture": c.architecture, "n_ctx_train": c.contextLength, "n_vocab": c.vocabularySize,
                         "n_layer": c.layerCount, "kv_pool_bytes": poolBytes, "path": engine.path] as [String: Any]]
    }

    // MARK: - Generation

    func generate(_ request: Request, endpoint: Endpoint) async throws -> Response {
        var request = request
        let body = try await readJSON(&request)
        let parsed = try parser.parse(body, endpoint: endpoint)
        let (job, stream) = try scheduler.submit(parsed.generation)
        let scheduler = self.scheduler
        // From here until the answer is written, a client that hangs up cancels the request,
        // whether it is queued, prefilling or decoding. Watching reads the connection to its
        // end, so it cannot carry another request: answers say `Connection: close`.
        let watch = HangUpWatch(request) { scheduler.cancel(job) }
        let id = (endpoint == .chat ? "chatcmpl-" : "cmpl-") + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let shape = ResponseShape(id: id, endpoint: endpoint, model: parsed.model, created: Int(Date().timeIntervalSince1970),
                                  reservation: parsed.generation.reservation)
        let events = EventIterator(stream)
        // Wait for admission before answering anything: a stream's 200 is sent only once the
        // request runs, so a queued request refused by the shutdown still gets its 503.
        switch await events.next() {
        case .admitted: break
        case .failed(let error): await watch.finish(); throw error
        case .text, .finished, nil: await watch.finish(); throw APIError.clientGone()
        }
        if parsed.stream {
            let includeUsage = parsed.includeUsage
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "close"],
                body: ResponseBody { writer in
                    do {
                        try await writer.write(ByteBuffer(string: shape.sse(shape.chunk(text: nil, role: true, finish: nil))))
                        while let event = await events.next() {
                            switch event {
                            case .admitted: break
                            case .text(let piece):
                                if !piece.isEmpty { try await writer.write(ByteBuffer(string: shape.sse(shape.chunk(text: piece, role: false, finish: nil)))) }
                            case .finished(let summary):
                                try await writer.write(ByteBuffer(string: shape.sse(shape.chunk(text: nil, role: false, finish: summary.finishReason))))
                                if includeUsage { try await writer.write(ByteBuffer(string: shape.sse(shape.usageChunk(summary)))) }
                            case .failed(let error):
                                // A cut stream says why (e.g. `shutting_down`) before it ends, so
                                // it never looks like a complete answer.
                                try await writer.write(ByteBuffer(string: shape.sse(error.body)))
                            }
                        }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    } catch {
                        scheduler.cancel(job)  // the write failed: the client is gone
                        await watch.finish()
                        throw error
                    }
                    await watch.finish()
                    try await writer.finish(nil)
                })
        }
        var text = ""
        var outcome: Result<Response, APIError> = .failure(.clientGone())
        loop: while let event = await events.next() {
            switch event {
            case .admitted: break
            case .text(let piece): text += piece
            case .finished(let summary):
                var response = Self.json(shape.complete(text: text, summary: summary))
                response.headers[.connection] = "close"
                outcome = .success(response)
                break loop
            case .failed(let error): outcome = .failure(error); break loop
            }
        }
        await watch.finish()
        return try outcome.get()
    }

    static func json(_ object: [String: Any]) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: jsonData(object))))
    }
}

// MARK: - OpenAI response objects

/// Builds the response objects of one request.
struct ResponseShape: Sendable {
    let id: String
    let endpoint: Endpoint
    let model: String
    let created: Int
    let reservation: Int

    private var object: String { endpoint == .chat ? "chat.completion" : "text_completion" }
    /// The `object` of a streamed chunk.
    private var chunkObject: String { endpoint == .chat ? "chat.completion.chunk" : "text_completion" }

    func usage(_ s: JobSummary) -> [String: Any] {
        ["prompt_tokens": s.promptTokens, "completion_tokens": s.completionTokens, "total_tokens": s.promptTokens + s.completionTokens]
    }

    /// IndexMem's extension: what the cache kept and what the request cost.
    func extras(_ s: JobSummary) -> [String: Any] {
        ["kv_cache": ["policy": s.cache.policy, "mode": s.cache.mode, "budget": s.cache.budget.map { $0 as Any } ?? NSNull(),
                      "kv_bytes_peak": s.cache.kvBytesPeak, "kv_bytes_reserved": reservation,
                      "kv_bytes_full_cache": s.cache.kvBytesFullCache, "memory_bytes": s.cache.memoryBytes, "evictions": s.cache.evictions,
                      "entries": s.cache.entries, "kv_type": s.cache.kvType] as [String: Any],
         "timings": ["queue_seconds": s.queueSeconds, "prefill_seconds": s.prefillSeconds, "decode_seconds": s.decodeSeconds,
                     "decode_tokens_per_second": s.decodeSeconds > 0 ? Double(s.completionTokens) / s.decodeSeconds : 0]]
    }

    func complete(text: String, summary s: JobSummary) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": s.finishReason, "logprobs": NSNull()]
        if endpoint == .chat { choice["message"] = ["role": "assistant", "content": text] } else { choice["text"] = text }
        let out: [String: Any] = ["id": id, "object": object, "created": created, "model": model, "choices": [choice],
                                  "usage": usage(s), "system_fingerprint": NSNull()]
        return out.merging(extras(s)) { _, extra in extra }
    }

    /// A streamed chunk: text, the first chat chunk (`role`), or the last one (`finish`).
    func chunk(text: String?, role: Bool, finish: String?) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": finish.map { $0 as Any } ?? NSNull(), "logprobs": NSNull()]
        if endpoint == .chat {
            var delta: [String: Any] = [:]
            if role { delta["role"] = "assistant"; delta["content"] = "" }
            if let text { delta["content"] = text }
            choice["delta"] = delta
        } else {
            choice["text"] = text ?? ""
        }
        return ["id": id, "object": chunkObject, "created": created, "model": model, "choices": [choice],
                "system_fingerprint": NSNull()]
    }

    func usageChunk(_ s: JobSummary) -> [String: Any] {
        let out: [String: Any] = ["id": id, "object": chunkObject, "created": created, "model": model, "choices": [] as [Any],
                                  "usage": usage(s)]
        return out.merging(extras(s)) { _, extra in extra }
    }

    func sse(_ object: [String: Any]) -> String {
        "data: " + String(decoding: jsonData(object), as: UTF8.self) + "\n\n"
    }
}

// MARK: - Error middleware

/// Wraps every handler once: errors become OpenAI error objects with their status, unknown
/// routes a JSON 404, anything unexpected a JSON 500; and each answer is counted.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = Self.routeLabel(request.uri.path)
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response()
        } catch let error as HTTPParserError {
            // A malformed request (bad chunking, a body cut short): Hummingbird answers 400
            // and closes the connection.
            metrics.request(route: route, status: 400)
            throw error
        } catch let error as HTTPError {
            // Hummingbird's router answers an unknown path, and a wrong method on a known one,
            // with 404; a body over the limit is caught where it is read (`readJSON`).
            switch error.status {
            case .notFound: response = APIError.notFound(request.uri.path).response()
            default:
                response = APIError(status: error.status, message: error.body ?? error.status.reasonPhrase, type: "invalid_request_error").response()
            }
        } catch is CancellationError {
            response = APIError(status: .serviceUnavailable, message: "the request was cancelled", type: "server_error", code: "cancelled").response()
        } catch {
            context.logger.error("unexpected error: \(error)")
            response = APIError.internalError().response()
        }
        metrics.request(route: route, status: Int(response.status.code))
        return response
    }

    /// Known routes by name; everything else as `other` (so the label set stays small).
    static func routeLabel(_ path: String) -> String {
        let known = ["/health", "/v1/models", "/metrics", "/tokenize", "/detokenize", "/v1/completions", "/v1/chat/completions"]
        if known.contains(path) { return path }
        if path.hasPrefix("/v1/models/") { return "/v1/models/:id" }
        return "other"
    }
}

// MARK: - Scheduler as a service

/// Runs the scheduler thread; on graceful shutdown stops admission, lets running requests
/// finish for `grace` seconds, cuts the rest, and returns (then the listener closes).
struct SchedulerService: Service {
    let scheduler: Scheduler
    let grace: Double
    let logger: Logger

    func run() async throws {
        scheduler.start()
        try? await gracefulShutdown()
        let running = scheduler.activeCount
        logger.info("indexmem serve: shutting down; \(running) running request(s) get up to \(grace) s to finish")
        scheduler.stopAccepting()
        let deadline = Date().addingTimeInterval(grace)
        while scheduler.activeCount > 0 && Date() < deadline && !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        if scheduler.activeCount > 0 {
            logger.info("indexmem serve: cancelling \(scheduler.activeCount) request(s) still running")
            scheduler.cancelAll()
        }
        scheduler.stop()
        for _ in 0..<200 where scheduler.activeCount > 0 { try? await Task.sleep(nanoseconds: 10_000_000) }
        logger.info("indexmem serve: stopped")
    }
}
