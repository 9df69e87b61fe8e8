// IndexMem — server. Apache-2.0.
//
// A strict RFC 8259 parser for request bodies, written here instead of `JSONDecoder` because a
// request must mean one thing: Foundation's decoder lets the first of two equal keys win
// (`{"max_tokens": 1, "max_tokens": 6}` gave 1 token, `{"max_tokens": 2, "max_tokens": "x"}`
// was accepted), so a proxy that reads the last one and this server disagree. Here a
// duplicate key is a 400. The parser also bounds nesting (iteratively checked, never deep
// recursion on a hostile body), refuses invalid UTF-8 and lone surrogates, and builds the
// typed tree straight from the bytes without an intermediate map.

import Foundation

/// Why a body is not the JSON this server accepts; `APIError` renders it as a 400.
struct JSONSyntaxError: Error, Sendable {
    var offset: Int
    var reason: String
}

/// Parses one JSON value from UTF-8 bytes.
struct StrictJSONParser {
    /// Deepest nesting of arrays and objects accepted (requests need a handful).
    static let maxDepth = 64

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    static func parse(_ data: Data) throws(JSONSyntaxError) -> JSONValue {
        let result: Result<JSONValue, JSONSyntaxError> = data.withUnsafeBytes { raw in
            var p = StrictJSONParser(raw.bindMemory(to: UInt8.self))
            return Result { () throws(JSONSyntaxError) -> JSONValue in
                p.skipSpace()
                let v = try p.value()
                p.skipSpace()
                guard p.i == p.bytes.count else { throw p.fail("unexpected data after the JSON value") }
                return v
            }
        }
        return try result.get()
    }

    private func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: i, reason: reason) }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of the body") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail("unexpected end of the body") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1
        var fields: [String: JSONValue] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return .object(fields) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key in double quotes") }
            let keyStart = i
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            i += 1
            skipSpace()
            let v = try value()
            guard fields.updateValue(v, forKey: key) == nil else {
                throw JSONSyntaxError(offset: keyStart, reason: "the key '\(key.debugEscaped)' appears twice in one object")
            }
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of the body") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}' in an object")
        }
        depth -= 1
        return .object(fields)
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of the body") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']' in an array")
        }
        depth -= 1
        return .array(items)
    }

    /// A number as RFC 8259 writes it (no leading zeros, no `+`, no bare `.`); parsed by
    /// `strtod` on the checked span, so `1e999` is infinite and then refused by the field getters.
    private mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else { while i < bytes.count, isDigit(bytes[i]) { i += 1 } }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        guard i - start <= 64 else { throw JSONSyntaxError(offset: start, reason: "a number longer than 64 characters") }
        // strtod needs a terminated C string; the span is short, so copy it to the stack.
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: i - start + 1) { buffer in
            for k in start..<i { buffer[k - start] = CChar(bitPattern: bytes[k]) }
            buffer[i - start] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    /// A string: valid UTF-8 only, no raw control characters, escapes decoded, surrogate
    /// escapes only in valid pairs (a lone `\ud800` is not text).
    private mutating func string() throws(JSONSyntaxError) -> String {
        i += 1
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<i])
                i += 1
                break
            }
            if b < 0x20 { throw fail("a control character inside a string must be escaped") }
            if b == UInt8(ascii: "\\") {
                out.append(contentsOf: bytes[runStart..<i])
                try escape(into: &out)
                runStart = i
                continue
            }
            if b < 0x80 { i += 1; continue }
            i += try utf8Sequence(at: i)
        }
        // Validated byte by byte above, so this decoding replaces nothing.
        return String(decoding: out, as: UTF8.self)
    }

    /// The length of the valid UTF-8 sequence starting at `at` (RFC 3629: no overlongs, no
    /// surrogates, nothing above U+10FFFF), or an error.
    private func utf8Sequence(at k: Int) throws(JSONSyntaxError) -> Int {
        let b0 = bytes[k]
        // (length, allowed range of the second byte) by the lead byte, as RFC 3629's table.
        let spec: (n: Int, low: UInt8, high: UInt8)
        switch b0 {
        case 0xC2...0xDF: spec = (2, 0x80, 0xBF)
        case 0xE0: spec = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: spec = (3, 0x80, 0xBF)
        case 0xED: spec = (3, 0x80, 0x9F)
        case 0xF0: spec = (4, 0x90, 0xBF)
        case 0xF1...0xF3: spec = (4, 0x80, 0xBF)
        case 0xF4: spec = (4, 0x80, 0x8F)
        default: throw JSONSyntaxError(offset: k, reason: "the body is not valid UTF-8")
        }
        let n = spec.n
        guard k + n <= bytes.count, bytes[k + 1] >= spec.low, bytes[k + 1] <= spec.high else {
            throw JSONSyntaxError(offset: k, reason: "the body is not valid UTF-8")
        }
        for m in 2..<max(n, 2) where bytes[k + m] & 0xC0 != 0x80 {
            throw JSONSyntaxError(offset: k, reason: "the body is not valid UTF-8")
        }
        return n
    }

    private mutating func escape(into out: inout [UInt8]) throws(JSONSyntaxError) {
        i += 1
        guard i < bytes.count else { throw fail("unterminated string") }
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw fail("a lone surrogate escape is not text")
                }
                i += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate escape is not text") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw fail("a lone surrogate escape is not text")
            }
            out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
        default: throw fail("invalid escape")
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("unterminated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }
}

extension String {
    /// The text with control characters and non-ASCII escaped, for messages about
    /// untrusted input (a key may hold a NUL or a terminal escape).
    var debugEscaped: String {
        var out = ""
        for s in unicodeScalars {
            switch s {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case " "..."~": out.unicodeScalars.append(s)
            default: out += "\\u{\(String(s.value, radix: 16))}"
            }
        }
        return out
    }
}
