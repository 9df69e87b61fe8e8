// IndexMem — server. Apache-2.0.
//
// /tokenize and /detokenize with bounded memory. Building the answer as one dictionary per
// token through JSONSerialization took a 3.5 MB /tokenize with pieces from 49 MB to 983 MB
// resident (and glibc kept it). Here the text is capped (`maxTokenizeBytes`, 413 above), the
// answer is written straight into one buffer (a piece's text is a small string, no heap
// object per token), and at most `maxTokenizeActive` of these requests run at once, so their
// memory is bounded in total, as the KV pool bounds generation's.

import Foundation
import Hummingbird
import NIOCore
import Synchronization

extension InferenceServer {
    func tokenize(_ request: Request) async throws -> Response {
        var request = request
        let body = try await readJSON(&request)
        guard let content = try body.string("content") else { throw APIError.invalidRequest("'content' (a string) is required", param: "content") }
        let limit = options.maxTokenizeBytes
        guard content.utf8.count <= limit else {
            throw APIError.contentTooLarge("'content' is \(content.utf8.count) bytes; /tokenize takes at most \(limit) (--max-tokenize-bytes)",
                                           param: "content")
        }
        let addSpecial = try body.bool("add_special") ?? false
        let parseSpecial = try body.bool("parse_special") ?? true
        let withPieces = try body.bool("with_pieces") ?? false
        let tokenizer = engine.tokenizer
        return try await textWork.run {
            let ids = tokenizer.encode(content, addSpecial: addSpecial, parseSpecial: parseSpecial)
            var out = ByteBuffer()
            out.reserveCapacity(16 + ids.count * (withPieces ? 28 : 7))
            out.writeStaticString("{\"tokens\":[")
            for (k, id) in ids.enumerated() {
                if k > 0 { out.writeStaticString(",") }
                if withPieces {
                    out.writeStaticString("{\"id\":")
                    out.writeString(String(id))
                    out.writeStaticString(",\"piece\":")
                    // Most pieces are under 16 bytes: a small string, stored inline.
                    out.writeJSONString(String(decoding: tokenizer.pieceBytes(id, special: true), as: UTF8.self))
                    out.writeStaticString("}")
                } else {
                    out.writeString(String(id))
                }
            }
            out.writeStaticString("]}")
            return Self.json(out)
        }
    }

    func detokenize(_ request: Request) async throws -> Response {
        var request = request
        let body = try await readJSON(&request)
        guard let list = try body.array("tokens") else { throw APIError.invalidRequest("'tokens' (an array of token ids) is required", param: "tokens") }
        let vocab = engine.configuration.vocabularySize
        guard let ids = list.tokenIds(vocabulary: vocab) else {
            throw APIError.invalidRequest("'tokens' must hold integers in 0..<\(vocab)", param: "tokens")
        }
        let limit = options.maxTokenizeBytes
        let tokenizer = engine.tokenizer
        return try await textWork.run {
            // The bytes first, checked against the cap as they grow; then the same leading-space
            // rule and U+FFFD replacement as `Tokenizer.decode`.
            var bytes: [UInt8] = []
            for id in ids {
                bytes += tokenizer.pieceBytes(id, special: true)
                guard bytes.count <= limit else {
                    throw APIError.contentTooLarge("these tokens decode to more than \(limit) bytes, the most /detokenize returns (--max-tokenize-bytes)",
                                                   param: "tokens")
                }
            }
            if tokenizer.decodeDropsLeadingSpace, let first = ids.first, bytes.first == 0x20,
               tokenizer.pieceBytes(first, special: true).first == 0x20 {
                bytes.removeFirst()
            }
            var out = ByteBuffer()
            out.reserveCapacity(bytes.count + bytes.count / 8 + 16)
            out.writeStaticString("{\"content\":")
            out.writeJSONString(String(decoding: bytes, as: UTF8.self))
            out.writeStaticString("}")
            return Self.json(out)
        }
    }

    static func json(_ buffer: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

extension ByteBuffer {
    /// Writes `text` as a JSON string literal (quotes, backslashes and control characters escaped).
    mutating func writeJSONString(_ text: String) {
        writeStaticString("\"")
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for (k, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<k]))
                switch b {
                case UInt8(ascii: "\""): writeStaticString("\\\"")
                case UInt8(ascii: "\\"): writeStaticString("\\\\")
                case 0x0A: writeStaticString("\\n")
                case 0x0D: writeStaticString("\\r")
                case 0x09: writeStaticString("\\t")
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
                }
                runStart = k + 1
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<utf8.count]))
        }
        writeStaticString("\"")
    }
}

// MARK: - A small limit on concurrent work

/// At most `limit` bodies run at once; up to `maxWaiting` more wait in order; beyond that 503.
final class WorkLimiter: Sendable {
    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    let limit: Int
    let maxWaiting: Int
    private let state = Mutex(State())

    init(limit: Int, maxWaiting: Int) {
        self.limit = limit
        self.maxWaiting = maxWaiting
    }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            // Decided and queued under one lock, so a release in between cannot be missed.
            let resume: (@Sendable () -> Void)? = state.withLock { s in
                if s.running < limit { s.running += 1; return { c.resume() } }
                if s.waiters.count >= maxWaiting {
                    let queued = s.waiters.count
                    return {
                        c.resume(throwing: APIError.busy(queued: queued, waitingFor: "one of the \(self.limit) /tokenize or /detokenize slots",
                                                         retryAfter: 1))
                    }
                }
                s.waiters.append(c)
                return nil
            }
            resume?()
        }
    }

    private func release() {
        // A waiter takes the slot over (running stays the same) or the slot is freed.
        let next: CheckedContinuation<Void, any Error>? = state.withLock { s in
            if s.waiters.isEmpty { s.running -= 1; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
