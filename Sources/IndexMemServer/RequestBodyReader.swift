// IndexMem — server. Apache-2.0.
//
// Reading a request body within the size limit. A body over the limit is answered 413, but
// the answer is useless if the client never reads it: a client that sends a 10 MB body with
// `Connection: close` blocks in `send` once the server stops reading (Hummingbird stops
// reading a `Connection: close` request after its response), so it timed out instead of
// seeing the 413. So the rest of an oversize body is read and dropped, bounded in bytes and
// time, before the 413 goes out; a body beyond even that bound gets the 413 at once.

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension InferenceServer {
    /// Most bytes of an oversize body read and dropped so its client sees the 413.
    static let drainLimitBytes = 64 << 20
    /// Longest time spent dropping an oversize body (a 1-byte/s client cannot hold a handler).
    static let drainLimitSeconds = 10.0

    /// Reads a JSON object body: 415 unless `application/json`, 413 above the size limit,
    /// 400 when it does not parse.
    func readJSON(_ request: inout Request) async throws -> JSONObject {
        let type = request.headers[.contentType] ?? ""
        guard type.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) == "application/json" else {
            throw APIError.unsupportedMediaType(type)
        }
        let limit = options.maxBodyBytes
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > Self.drainLimitBytes { throw APIError.bodyTooLarge(limit: limit) }
        var collected = ByteBuffer()
        var total = 0
        var tooLarge = (declared ?? 0) > limit
        let started = Date()
        for try await part in request.body {
            total += part.readableBytes
            if !tooLarge && total > limit {
                tooLarge = true
                collected = ByteBuffer()  // its memory goes back now, not after the drain
            }
            if !tooLarge {
                collected.writeImmutableBuffer(part)
            } else if total > Self.drainLimitBytes || Date().timeIntervalSince(started) > Self.drainLimitSeconds {
                break
            }
        }
        if tooLarge { throw APIError.bodyTooLarge(limit: limit) }
        // Keep the body on the request (Hummingbird keeps the connection's stream behind it,
        // which the hang-up watch needs).
        request.body = RequestBody(buffer: collected)
        return try JSONValue.parseObject(Data(collected.readableBytesView))
    }
}
