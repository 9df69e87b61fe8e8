// IndexMem — server. Apache-2.0.
//
// Every error a client can see renders itself as OpenAI's error object,
// `{"error": {"message", "type", "param", "code"}}`, with the status it carries (as
// Hummingbird's `HTTPResponseError` does). Invalid input is 4xx; anything else is a 500 with
// a generic message, never a crash (llama.cpp's `ex_wrapper` policy). A prompt beyond the
// model's trained positions gets llama.cpp's `exceed_context_size_error` body, whose
// `n_prompt_tokens` and `n_ctx` clients already parse to trim their history.

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// MARK: - Error

/// An error with its HTTP status and OpenAI-style body.
public struct APIError: Error, Sendable, CustomStringConvertible, HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's `type`: `invalid_request_error`, `not_found_error`, `server_error`, ...
    public var type: String
    /// The request field at fault, if one is.
    public var param: String?
    /// A stable machine-readable code (`invalid_json`, `model_not_found`, ...).
    public var code: String?
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    public var retryAfter: Int?
    /// llama.cpp's context-size fields (`n_prompt_tokens`, `n_ctx`), when the prompt is too long.
    public var contextOverflow: (promptTokens: Int, contextLength: Int)?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    // MARK: Kinds

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = "invalid_value") -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(status: .notFound, message: "the model '\(name)' does not exist; GET /v1/models lists the models served",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, message: "no route for \(path)", type: "not_found_error", code: "not_found")
    }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "the request body is larger than \(limit) bytes",
                 type: "invalid_request_error", code: "body_too_large")
    }

    /// Text for /tokenize or /detokenize beyond `--max-tokenize-bytes`.
    static func contentTooLarge(_ message: String, param: String) -> APIError {
        APIError(status: .contentTooLarge, message: message, type: "invalid_request_error", param: param, code: "content_too_large")
    }

    static func unsupportedMediaType(_ got: String) -> APIError {
        APIError(status: .unsupportedMediaType, message: "the request body must be application/json, got '\(got)'",
                 type: "invalid_request_error", code: "unsupported_media_type")
    }

    static func busy(queued: Int, waitingFor reason: String, retryAfter: Int) -> APIError {
        APIError(status: .serviceUnavailable,
                 message: "the server is at capacity: the queue is full (\(queued) requests waiting) and this request would wait for \(reason); retry later",
                 type: "server_overloaded", code: "queue_full", retryAfter: retryAfter)
    }

    static func shuttingDown() -> APIError {
        APIError(status: .serviceUnavailable, message: "the server is shutting down", type: "server_overloaded",
                 code: "shutting_down", retryAfter: 5)
    }

    /// The client closed its connection before the answer (nobody reads this; it is counted).
    static func clientGone() -> APIError {
        APIError(status: .init(code: 499), message: "the client went away", type: "cancelled", code: "client_gone")
    }

    static func exceedsContext(promptTokens: Int, contextLength: Int) -> APIError {
        var e = APIError(status: .badRequest,
                         message: "request (\(promptTokens) tokens) exceeds the available context size (\(contextLength) tokens), try increasing it",
                         type: "exceed_context_size_error")
        e.contextOverflow = (promptTokens, contextLength)
        return e
    }

    static func internalError(_ message: String = "internal error") -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    // MARK: Rendering

    /// The JSON body.
    var body: [String: Any] {
        var error: [String: Any] = ["message": message, "type": type]
        if let (n, ctx) = contextOverflow {
            // llama.cpp's shape, verbatim: a numeric code and the two counts.
            error["code"] = Int(status.code)
            error["n_prompt_tokens"] = n
            error["n_ctx"] = ctx
        } else {
            error["param"] = param ?? NSNull()
            error["code"] = code ?? NSNull()
        }
        return ["error": error]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonData(body, sorted: true))))
    }
}
