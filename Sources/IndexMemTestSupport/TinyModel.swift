// IndexMem — test support. Apache-2.0.

import Foundation
import IndexMemGGUF

// MARK: - Tiny random-weight models from fixtures

/// A tiny random-weight model described by a fixture of scripts/make_tiny_fixtures.py
/// (Tests/Fixtures/tiny/<name>.json): its GGUF metadata in file order, and for each tensor
/// a recipe from which the bytes are generated with SplitMix64, exactly as the script does,
/// so the file written here is the file llama.cpp ran.
public struct TinyModelFixture: Decodable, Sendable {
    public struct Entry: Decodable, Sendable {
        public let key: String
        /// `string`, `uint32`, `float32`, `bool`, `array[string]`, `array[int32]`, `array[float32]`.
        public let type: String
        public let value: JSONScalarOrArray
    }

    public struct Recipe: Decodable, Sendable {
        /// `uniform`, `ones` or `values`.
        public let kind: String
        /// Hex seed of the tensor's SplitMix64 stream.
        public let seed: String?
        /// `uniform`: values in (-2^-exponent, 2^-exponent).
        public let exponent: Int?
        /// `values`: the floats themselves.
        public let values: [Float]?
    }

    public struct TensorSpec: Decodable, Sendable {
        public let name: String
        /// ggml type name (`F32`, `Q8_0`, `Q4_K`, ...).
        public let type: String
        /// ggml order, innermost first.
        public let dims: [Int]
        public let recipe: Recipe
        public let sha256: String
    }

    public struct TokenizeCase: Decodable, Sendable {
        public let name: String
        public let text: String
        public let ids: [Int]
        public let roundtrip: Bool
    }

    public struct TopLogits: Decodable, Sendable {
        public let position: Int
        public let ids: [Int]
        public let logits: [Float]
    }

    public struct Greedy: Decodable, Sendable {
        public let name: String
        public let prompt: String
        public let special: Bool
        public let prompt_ids: [Int]
        public let generated_ids: [Int]
        public let greedy_margins: [Double]
        public let top_logits: [TopLogits]
    }

    public let name: String
    public let file_sha256: String
    public let metadata: [Entry]
    public let tensors: [TensorSpec]
    public let tokenize: [TokenizeCase]
    public let greedy: [Greedy]

    /// Loads `Tests/Fixtures/tiny/<name>.json`.
    public static func load(_ name: String) throws -> TinyModelFixture {
        let url = URL(fileURLWithPath: TestPaths.fixtures + "/tiny/\(name).json")
        return try JSONDecoder().decode(TinyModelFixture.self, from: Data(contentsOf: url))
    }

    /// The GGUF writer holding this model, with `override` applied to the metadata (a key
    /// mapped to nil is dropped; new keys are appended).
    public func writer(override: [String: GGUFValue?] = [:]) throws -> GGUFWriter {
        var w = GGUFWriter()
        var seen = Set<String>()
        for e in metadata {
            seen.insert(e.key)
            if let o = override[e.key] {
                if let v = o { w.add(key: e.key, value: v) }
                continue
            }
            w.add(key: e.key, value: try e.value.gguf(as: e.type, key: e.key))
        }
        for (k, v) in override.sorted(by: { $0.key < $1.key }) where !seen.contains(k) {
            if let v { w.add(key: k, value: v) }
        }
        for t in tensors {
            guard let type = TinyModelFixture.tensorType(named: t.type) else { throw TinyModelError("unknown tensor type \(t.type)") }
            w.addTensor(name: t.name, dimensions: t.dims, type: type, data: try Self.bytes(t, type))
        }
        return w
    }

    /// Writes the model to `path`.
    public func write(to path: String, override: [String: GGUFValue?] = [:]) throws {
        try writer(override: override).write(to: path)
    }

    // MARK: Tensor bytes (scripts/make_tiny_fixtures.py `tensor_bytes`)

    /// f16 scale fields of each quantized block, kept in a range that keeps the values
    /// finite: (offset in the block, lowest bits, highest bits). Types without scales: none.
    static let scaleFields: [GGUFTensorType: [(Int, UInt16, UInt16)]] = [
        .q4_0: [(0, 0x1C00, 0x1FFF)],
        .q4_1: [(0, 0x1C00, 0x1FFF), (2, 0x9C00, 0x9FFF)],
        .q5_0: [(0, 0x1800, 0x1BFF)],
        .q5_1: [(0, 0x1800, 0x1BFF), (2, 0x9C00, 0x9FFF)],
        .q8_0: [(0, 0x1000, 0x13FF)],
        .q4_K: [(0, 0x0C00, 0x0FFF), (2, 0x0C00, 0x0FFF)],
        .q5_K: [(0, 0x0800, 0x0BFF), (2, 0x0800, 0x0BFF)],
        .q6_K: [(208, 0x0400, 0x07FF)],
    ]

    /// The fixture types the script writes (F32, F16 and the quantized types with scale fields).
    static func tensorType(named name: String) -> GGUFTensorType? {
        GGUFTensorType.allCases.first { $0.description == name && ($0 == .f32 || $0 == .f16 || scaleFields[$0] != nil) }
    }

    static func bytes(_ t: TensorSpec, _ type: GGUFTensorType) throws -> [UInt8] {
        let count = t.dims.reduce(1, *)
        let r = t.recipe
        if r.kind == "values" {
            guard let values = r.values, values.count == count else { throw TinyModelError("\(t.name): values") }
            return values.flatMap { GGUFWriter.le($0.bitPattern) }
        }
        guard let seedText = r.seed, let seed = UInt64(seedText.dropFirst(2), radix: 16) else { throw TinyModelError("\(t.name): seed") }
        var rng = SplitMix64(seed: seed)
        if type.blockElements == 1 {
            var floats = [Float](repeating: 0, count: count)
            for i in 0..<count {
                if r.kind == "ones" {
                    floats[i] = 1 + Float(rng.next() >> 44) * 0x1p-27
                } else {
                    let e = r.exponent ?? 0
                    floats[i] = Float(Int64(rng.next() >> 40) - (1 << 23)) * Float(sign: .plus, exponent: -(23 + e), significand: 1)
                }
            }
            if type == .f32 { return floats.flatMap { GGUFWriter.le($0.bitPattern) } }
            return floats.flatMap { GGUFWriter.le(Float16($0).bitPattern) }
        }
        let n = count / type.blockElements * type.blockBytes
        var raw: [UInt8] = []
        raw.reserveCapacity(n + 8)
        while raw.count < n { raw += GGUFWriter.le(rng.next()) }
        raw.removeLast(raw.count - n)
        for b in 0..<(count / type.blockElements) {
            for (offset, lo, hi) in Self.scaleFields[type] ?? [] {
                let bits = lo &+ UInt16(rng.next() % UInt64(hi - lo + 1))
                raw[b * type.blockBytes + offset] = UInt8(bits & 0xff)
                raw[b * type.blockBytes + offset + 1] = UInt8(bits >> 8)
            }
        }
        return raw
    }
}

/// A fixture value: a scalar or an array of scalars.
public enum JSONScalarOrArray: Decodable, Sendable {
    case string(String)
    case bool(Bool)
    case number(Double)
    case strings([String])
    case numbers([Double])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .string(s) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let a = try? c.decode([String].self) { self = .strings(a) }
        else { self = .numbers(try c.decode([Double].self)) }
    }

    func gguf(as type: String, key: String) throws -> GGUFValue {
        switch (type, self) {
        case ("string", .string(let s)): return .string(s)
        case ("uint32", .number(let d)): return .uint32(UInt32(d))
        case ("float32", .number(let d)): return .float32(Float(d))
        case ("bool", .bool(let b)): return .bool(b)
        case ("array[string]", .strings(let a)): return .array(a.map { .string($0) })
        case ("array[int32]", .numbers(let a)): return .array(a.map { .int32(Int32($0)) })
        case ("array[float32]", .numbers(let a)): return .array(a.map { .float32(Float($0)) })
        default: throw TinyModelError("metadata \(key): cannot read a \(type)")
        }
    }
}

public struct TinyModelError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
