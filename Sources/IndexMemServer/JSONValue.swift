// IndexMem — server. Apache-2.0.
//
// Request bodies are parsed into a typed JSON tree first (`StrictJSONParser`), then read field by field, so
// every wrong type or value gets a message that names the field (`'max_tokens' must be an
// integer`), instead of a decoder's coding path.

import Foundation

// MARK: - JSON tree

/// A JSON value with its type kept (a number is never read as a boolean, nor the reverse).
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a request body; the top level must be an object.
    package static func parseObject(_ data: Data) throws(APIError) -> JSONObject {
        guard !data.isEmpty else { throw .invalidRequest("the request body is empty; send a JSON object", code: "invalid_json") }
        let value: JSONValue
        do { value = try StrictJSONParser.parse(data) } catch {
            throw .invalidRequest("the request body is not valid JSON: \(error.reason) (at byte \(error.offset))", code: "invalid_json")
        }
        guard case .object(let fields) = value else {
            throw .invalidRequest("the request body must be a JSON object", code: "invalid_json")
        }
        return JSONObject(fields: fields)
    }

    package var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// MARK: - Typed field access

/// A JSON object read field by field; each getter returns nil for a missing or null field
/// and throws an `APIError` naming the field for a wrong type or value.
package struct JSONObject: Sendable {
    package var fields: [String: JSONValue]
    /// Prefix of field names in messages (`messages[2].`).
    package var path: String = ""

    package init(fields: [String: JSONValue], path: String = "") {
        self.fields = fields
        self.path = path
    }

    package subscript(key: String) -> JSONValue? {
        if let v = fields[key], v != .null { return v }
        return nil
    }

    private func name(_ key: String) -> String { "'\(path)\(key)'" }

    private func wrong(_ key: String, _ expected: String, _ got: JSONValue) -> APIError {
        .invalidRequest("\(name(key)) must be \(expected), got \(got.typeName)", param: path + key)
    }

    package func string(_ key: String) throws(APIError) -> String? {
        guard let v = self[key] else { return nil }
        guard case .string(let s) = v else { throw wrong(key, "a string", v) }
        return s
    }

    package func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard case .bool(let b) = v else { throw wrong(key, "a boolean", v) }
        return b
    }

    package func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(APIError) -> Double? {
        guard let v = self[key] else { return nil }
        guard case .number(let d) = v, d.isFinite else { throw wrong(key, "a number", v) }
        if let range, !range.contains(d) {
            throw .invalidRequest("\(name(key)) must be in [\(format(range.lowerBound)), \(format(range.upperBound))], got \(format(d))",
                                  param: path + key)
        }
        return d
    }

    package func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(APIError) -> Int? {
        guard let v = self[key] else { return nil }
        guard case .number(let d) = v, d.isFinite, d.rounded() == d else { throw wrong(key, "an integer", v) }
        guard abs(d) < 9e15 else { throw .invalidRequest("\(name(key)) is out of range, got \(format(d))", param: path + key) }
        let i = Int(d)
        if let range, !range.contains(i) {
            throw .invalidRequest("\(name(key)) must be in \(range.lowerBound)...\(range.upperBound), got \(i)", param: path + key)
        }
        return i
    }

    package func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let v = self[key] else { return nil }
        guard case .array(let a) = v else { throw wrong(key, "an array", v) }
        return a
    }

    package func object(_ key: String) throws(APIError) -> JSONObject? {
        guard let v = self[key] else { return nil }
        guard case .object(let o) = v else { throw wrong(key, "an object", v) }
        return JSONObject(fields: o, path: path + key + ".")
    }

    private func format(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}

// MARK: - Token ids

extension [JSONValue] {
    /// The token ids these values are, or nil when one is not an integer in 0..<`vocabulary`.
    func tokenIds(vocabulary: Int) -> [Int]? {
        var ids: [Int] = []
        ids.reserveCapacity(count)
        for value in self {
            guard case .number(let d) = value, d.rounded() == d, d >= 0, d < Double(vocabulary) else { return nil }
            ids.append(Int(d))
        }
        return ids
    }
}

// MARK: - Encoding

/// A response object as JSON bytes, slashes unescaped and keys sorted when asked (`{}` should
/// the object not be JSON).
func jsonData(_ object: [String: Any], sorted: Bool = false) -> Data {
    let options: JSONSerialization.WritingOptions = sorted ? [.sortedKeys, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
    return (try? JSONSerialization.data(withJSONObject: object, options: options)) ?? Data("{}".utf8)
}
