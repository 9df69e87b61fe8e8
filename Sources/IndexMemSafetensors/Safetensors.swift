// IndexMem — safetensors files. Apache-2.0.
//
// The adapter format (Hugging Face's safetensors): an 8-byte little-endian header length N,
// N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}`), then the raw little-endian tensor bytes. Adapters
// come from elsewhere as often as from here, so the reader treats every byte as hostile:
// bounded header, every offset inside the data, every size equal to its shape, no overlap.
// It imports nothing of ours so that it can be fuzzed alone.

import Foundation

// MARK: - Errors

/// Why a safetensors file cannot be read, with the detail a user needs to act.
public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case truncated(expected: Int, actual: Int)
    case headerTooLarge(Int)
    case malformedHeader(String)
    case unsupportedType(tensor: String, dtype: String)
    case badTensor(tensor: String, reason: String)
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read safetensors file \(p): \(r)"
        case .truncated(let e, let a): return "safetensors file is truncated: needs \(e) bytes, has \(a)"
        case .headerTooLarge(let n): return "safetensors header of \(n) bytes is larger than allowed (\(Safetensors.maximumHeaderBytes))"
        case .malformedHeader(let m): return "malformed safetensors header: \(m)"
        case .unsupportedType(let t, let d): return "tensor '\(t)' has dtype \(d); only F32 is supported"
        case .badTensor(let t, let r): return "tensor '\(t)': \(r)"
        case .missingTensor(let t): return "the adapter has no tensor '\(t)'"
        case .wrongShape(let t, let e, let a): return "tensor '\(t)' has shape \(a), expected \(e)"
        }
    }
}

// MARK: - Tensors

/// One f32 tensor.
public struct SafetensorsTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// A safetensors file in memory: named f32 tensors and string metadata.
public struct Safetensors: Sendable, Equatable {
    public static let maximumHeaderBytes = 16 << 20
    public var tensors: [String: SafetensorsTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafetensorsTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor `name` with exactly `shape`.
    public func tensor(_ name: String, shape: [Int]) throws(SafetensorsError) -> [Float] {
        guard let t = tensors[name] else { throw .missingTensor(name) }
        guard t.shape == shape else { throw .wrongShape(tensor: name, expected: shape, actual: t.shape) }
        return t.values
    }

    // MARK: Reading

    public init(path: String) throws(SafetensorsError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        try self.init(bytes: data)
    }

    public init(bytes data: Data) throws(SafetensorsError) {
        // Indexed from 0 without copying a whole file (a slice of another Data is rebased once).
        let bytes = data.startIndex == 0 ? data : Data(data)
        guard bytes.count >= 8 else { throw .truncated(expected: 8, actual: bytes.count) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else { throw .headerTooLarge(Int(clamping: headerLength)) }
        let n = Int(headerLength)
        guard bytes.count >= 8 + n else { throw .truncated(expected: 8 + n, actual: bytes.count) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) } catch {
            throw .malformedHeader("not JSON (\(error.localizedDescription))")
        }
        guard let header = object as? [String: Any] else { throw .malformedHeader("the header is not a JSON object") }
        let dataStart = 8 + n, dataBytes = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [String: SafetensorsTensor] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let m = entry as? [String: Any] else { throw .malformedHeader("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw .malformedHeader("metadata '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = entry as? [String: Any] else { throw .badTensor(tensor: name, reason: "entry is not an object") }
            guard let dtype = info["dtype"] as? String else { throw .badTensor(tensor: name, reason: "no dtype") }
            guard dtype == "F32" else { throw .unsupportedType(tensor: name, dtype: dtype) }
            guard let shapeValues = info["shape"] as? [Any], shapeValues.count <= 8 else {
                throw .badTensor(tensor: name, reason: "no shape (a list of at most 8 dimensions)")
            }
            var shape: [Int] = []
            var elements = 1
            for v in shapeValues {
                guard let d = Self.integer(v), d >= 0, d <= 1 << 31 else { throw .badTensor(tensor: name, reason: "shape \(shapeValues) is not non-negative integers") }
                shape.append(d)
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= 1 << 32 else { throw .badTensor(tensor: name, reason: "shape \(shape) is too large") }
                elements = product
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1]) else {
                throw .badTensor(tensor: name, reason: "data_offsets is not [begin, end]")
            }
            guard begin >= 0, begin <= end, end <= dataBytes else {
                throw .badTensor(tensor: name, reason: "data_offsets [\(begin), \(end)] lie outside the \(dataBytes) data bytes")
            }
            guard end - begin == elements * 4 else {
                throw .badTensor(tensor: name, reason: "\(end - begin) bytes do not hold shape \(shape) of F32")
            }
            var values = [Float](repeating: 0, count: elements)
            values.withUnsafeMutableBytes { out in
                _ = bytes.copyBytes(to: out, from: (dataStart + begin)..<(dataStart + end))
            }
            #if _endian(big)
            values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
            #endif
            tensors[name] = SafetensorsTensor(shape: shape, values: values)
            ranges.append((begin, end, name))
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw .badTensor(tensor: b.2, reason: "its bytes overlap tensor '\(a.2)'")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func integer(_ v: Any) -> Int? {
        if let n = v as? NSNumber {
            // Booleans and fractions are not sizes.
            let type = String(cString: n.objCType)
            if type == "c" || type == "B" { return nil }
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 9e15 else { return nil }
            return Int(d)
        }
        return nil
    }

    // MARK: Writing

    /// The file's bytes: tensors in name order, header padded with spaces to 8 bytes.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.values.count * 4]]
            offset += t.values.count * 4
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            #if _endian(little)
            tensors[name]!.values.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in tensors[name]!.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }

    /// Writes the file atomically (a reader never sees half of it).
    public func write(to path: String) throws {
        try serialized().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
