// IndexMem — test support. Apache-2.0.

import Foundation
import IndexMemGGUF

// MARK: - GGUF writer

/// Builds GGUF files in memory, for tests and fixtures.
///
/// Layout (little-endian, GGUF spec, ggml docs/gguf.md): magic `GGUF`, version u32, tensor
/// count u64, metadata count u64, metadata key/value pairs (key string, value type u32, value;
/// strings are u64 length + bytes; arrays are element type u32 + u64 count + elements), tensor
/// infos (name string, n_dims u32, dims u64 each in ggml order, type u32, data offset u64
/// relative to the data section), zero padding to the alignment, then the tensor data, each
/// tensor at an aligned offset and padded to the alignment.
///
/// Version 2 and 3 share this layout (3 only allows big-endian files), so `version` only
/// changes the number written. Any version number may be written, to test readers.
///
/// Besides well-formed files, the writer can produce deliberately malformed ones: raw metadata
/// entries (any key bytes, any type number, any payload), tensors with raw names, dimensions,
/// type numbers and offsets, and duplicates of anything. `build()` also returns the offset
/// of every count, length, type and offset field it wrote, so fuzzers can aim at them.
public struct GGUFWriter: Sendable {
    /// The version number written after the magic.
    public var version: UInt32
    /// The alignment of the data section and of every tensor's data.
    public var alignment: Int
    /// The magic written at the start (the real one unless a test wants it wrong).
    public var magic: [UInt8] = Array("GGUF".utf8)

    /// One metadata entry, either a typed value or raw bytes.
    public enum Entry: Sendable {
        case value(key: String, value: GGUFValue)
        /// Written as: key string (length + `key` bytes), `type` u32, then `payload` verbatim.
        case raw(key: [UInt8], type: UInt32, payload: [UInt8])
    }

    /// One tensor: its info fields and data. All fields are raw so that tests can write
    /// impossible tensors.
    public struct Tensor: Sendable {
        public var name: [UInt8]
        /// ggml order, innermost first. Written as n_dims u32 + one u64 each.
        public var dimensions: [UInt64]
        public var typeRaw: UInt32
        public var data: [UInt8]
        /// The offset written in the tensor info; nil writes the offset where the data is.
        public var offsetOverride: UInt64?

        public init(name: [UInt8], dimensions: [UInt64], typeRaw: UInt32, data: [UInt8], offsetOverride: UInt64? = nil) {
            self.name = name
            self.dimensions = dimensions
            self.typeRaw = typeRaw
            self.data = data
            self.offsetOverride = offsetOverride
        }
    }

    public private(set) var entries: [Entry] = []
    public private(set) var tensors: [Tensor] = []

    /// A writer for a file of `version` with data aligned to `alignment`. When `alignment`
    /// is not GGUF's default of 32, the `general.alignment` key (uint32) is added as the first
    /// metadata entry, as the spec requires (pass `writeAlignmentKey: false` to leave it out).
    public init(version: UInt32 = 3, alignment: Int = 32, writeAlignmentKey: Bool = true) {
        precondition(alignment > 0, "alignment must be positive")
        self.version = version
        self.alignment = alignment
        if alignment != 32 && writeAlignmentKey {
            entries.append(.value(key: "general.alignment", value: .uint32(UInt32(truncatingIfNeeded: alignment))))
        }
    }

    // MARK: Metadata

    /// Adds a metadata entry. Keys are not checked for duplicates (tests write those on purpose).
    /// Arrays must hold elements of one kind; an empty array is written as an array of uint8.
    public mutating func add(key: String, value: GGUFValue) {
        entries.append(.value(key: key, value: value))
    }

    /// Adds a raw metadata entry: any key bytes, any value type number, any payload.
    public mutating func addRaw(key: [UInt8], type: UInt32, payload: [UInt8]) {
        entries.append(.raw(key: key, type: type, payload: payload))
    }

    /// Adds a raw metadata entry with a string key.
    public mutating func addRaw(key: String, type: UInt32, payload: [UInt8]) {
        addRaw(key: Array(key.utf8), type: type, payload: payload)
    }

    // MARK: Tensors

    /// The bytes a tensor of `type` with `elements` elements takes.
    public static func byteCount(type: GGUFTensorType, elements: Int) -> Int {
        precondition(elements % type.blockElements == 0, "\(elements) elements is not a whole number of \(type) blocks")
        return elements / type.blockElements * type.blockBytes
    }

    /// Adds a tensor of a known type. `dimensions` is in ggml order (innermost first) and
    /// `data` must be exactly the tensor's size.
    public mutating func addTensor(name: String, dimensions: [Int], type: GGUFTensorType, data: [UInt8]) {
        let elements = dimensions.reduce(1, *)
        precondition(dimensions.allSatisfy { $0 >= 0 }, "negative dimension")
        precondition(data.count == Self.byteCount(type: type, elements: elements),
                     "tensor '\(name)': \(data.count) bytes given, \(type) \(dimensions) needs \(Self.byteCount(type: type, elements: elements))")
        tensors.append(Tensor(name: Array(name.utf8), dimensions: dimensions.map { UInt64($0) }, typeRaw: type.rawValue, data: data))
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(name: String, dimensions: [Int], floats: [Float]) {
        var data: [UInt8] = []
        data.reserveCapacity(floats.count * 4)
        for f in floats { Self.append(f.bitPattern, to: &data) }
        addTensor(name: name, dimensions: dimensions, type: .f32, data: data)
    }

    /// Adds an F16 tensor; each value is rounded to the nearest half (ties to even).
    public mutating func addTensor(name: String, dimensions: [Int], halves: [Float]) {
        addTensor(name: name, dimensions: dimensions, halfBits: halves.map(Self.halfBits))
    }

    /// Adds an F16 tensor from IEEE half bit patterns.
    public mutating func addTensor(name: String, dimensions: [Int], halfBits: [UInt16]) {
        var data: [UInt8] = []
        data.reserveCapacity(halfBits.count * 2)
        for h in halfBits { Self.append(h, to: &data) }
        addTensor(name: name, dimensions: dimensions, type: .f16, data: data)
    }

    /// Adds a tensor with every field raw and unchecked.
    public mutating func addRawTensor(_ tensor: Tensor) {
        tensors.append(tensor)
    }

    /// Adds a tensor with raw fields and unchecked data.
    public mutating func addRawTensor(name: String, dimensions: [UInt64], typeRaw: UInt32, data: [UInt8], offset: UInt64? = nil) {
        tensors.append(Tensor(name: Array(name.utf8), dimensions: dimensions, typeRaw: typeRaw, data: data, offsetOverride: offset))
    }

    // MARK: Output

    /// Where the writer put things in the file it built.
    public struct Layout: Sendable {
        /// What a header field holds.
        public enum Role: Sendable, Equatable {
            case version, tensorCount, metadataCount
            case keyLength, valueType, stringLength, arrayElementType, arrayCount
            case tensorNameLength, dimensionCount, dimension, tensorType, tensorOffset
        }

        /// One integer field of the header: where, how wide (4 or 8 bytes), and what it holds.
        public struct Field: Sendable {
            public let offset: Int
            public let width: Int
            public let role: Role
        }

        /// Every count, length, type and offset field written, in file order.
        public internal(set) var fields: [Field] = []
        /// The offset where the tensor infos end (before padding).
        public internal(set) var headerEnd = 0
        /// The start of the data section (aligned).
        public internal(set) var dataOffset = 0
        /// Each tensor's data range, from the start of the file.
        public internal(set) var tensorData: [Range<Int>] = []
        /// Each tensor's offset as written in its info (relative to the data section).
        public internal(set) var tensorOffsets: [UInt64] = []
        /// The end of the last tensor's data (before the final padding), or `dataOffset`.
        public var dataEnd: Int { tensorData.last?.upperBound ?? dataOffset }
    }

    /// The file's bytes and where everything is in them.
    public func build() -> (bytes: [UInt8], layout: Layout) {
        var out: [UInt8] = []
        var layout = Layout()
        func field<T: FixedWidthInteger>(_ v: T, _ role: Layout.Role) {
            layout.fields.append(.init(offset: out.count, width: MemoryLayout<T>.size, role: role))
            Self.append(v, to: &out)
        }
        func string(_ bytes: [UInt8], _ role: Layout.Role) {
            field(UInt64(bytes.count), role)
            out += bytes
        }
        func payload(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): Self.append(x, to: &out)
            case .int8(let x): Self.append(x, to: &out)
            case .uint16(let x): Self.append(x, to: &out)
            case .int16(let x): Self.append(x, to: &out)
            case .uint32(let x): Self.append(x, to: &out)
            case .int32(let x): Self.append(x, to: &out)
            case .uint64(let x): Self.append(x, to: &out)
            case .int64(let x): Self.append(x, to: &out)
            case .float32(let x): Self.append(x.bitPattern, to: &out)
            case .float64(let x): Self.append(x.bitPattern, to: &out)
            case .bool(let b): out.append(b ? 1 : 0)
            case .string(let s): string(Array(s.utf8), .stringLength)
            case .array(let items):
                let kind = items.first.map { Self.kind(of: $0) } ?? .uint8
                precondition(items.allSatisfy { Self.kind(of: $0) == kind },
                             "GGUF arrays hold one element type; nested arrays may differ")
                field(kind.rawValue, .arrayElementType)
                field(UInt64(items.count), .arrayCount)
                for item in items { payload(item) }
            }
        }

        out += magic
        field(version, .version)
        field(UInt64(tensors.count), .tensorCount)
        field(UInt64(entries.count), .metadataCount)
        for entry in entries {
            switch entry {
            case .value(let key, let value):
                string(Array(key.utf8), .keyLength)
                field(Self.kind(of: value).rawValue, .valueType)
                payload(value)
            case .raw(let key, let type, let bytes):
                string(key, .keyLength)
                field(type, .valueType)
                out += bytes
            }
        }

        // Data placement first: each tensor at the next aligned offset of the data section.
        var placed: [Int] = []
        var cursor = 0
        for t in tensors {
            cursor = Self.alignUp(cursor, alignment)
            placed.append(cursor)
            cursor += t.data.count
        }
        for (t, at) in zip(tensors, placed) {
            string(t.name, .tensorNameLength)
            field(UInt32(truncatingIfNeeded: t.dimensions.count), .dimensionCount)
            for d in t.dimensions { field(d, .dimension) }
            field(t.typeRaw, .tensorType)
            let offset = t.offsetOverride ?? UInt64(at)
            layout.tensorOffsets.append(offset)
            field(offset, .tensorOffset)
        }
        layout.headerEnd = out.count
        out += [UInt8](repeating: 0, count: Self.alignUp(out.count, alignment) - out.count)
        layout.dataOffset = out.count
        for (t, at) in zip(tensors, placed) {
            out += [UInt8](repeating: 0, count: layout.dataOffset + at - out.count)
            layout.tensorData.append(out.count..<(out.count + t.data.count))
            out += t.data
        }
        if !tensors.isEmpty {
            out += [UInt8](repeating: 0, count: Self.alignUp(out.count, alignment) - out.count)
        }
        return (out, layout)
    }

    /// The file's bytes.
    public func bytes() -> [UInt8] { build().bytes }

    /// Writes the file to `path`, replacing any file there.
    public func write(to path: String) throws {
        try Data(bytes()).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    // MARK: Helpers

    /// The GGUF value type of a value.
    public static func kind(of value: GGUFValue) -> GGUFValue.Kind {
        switch value {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    static func alignUp(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }

    /// Appends `v` little-endian.
    public static func append<T: FixedWidthInteger>(_ v: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// `v` as little-endian bytes.
    public static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        var b: [UInt8] = []
        append(v, to: &b)
        return b
    }

    /// A GGUF string: u64 length + bytes.
    public static func stringBytes(_ s: String) -> [UInt8] { stringBytes(Array(s.utf8)) }

    /// A GGUF string: u64 length + bytes.
    public static func stringBytes(_ b: [UInt8]) -> [UInt8] { le(UInt64(b.count)) + b }

    /// Overwrites `bytes[offset...]` with `v` little-endian, truncated to `width` bytes (1 to 8).
    public static func patch(_ bytes: inout [UInt8], at offset: Int, width: Int, value v: UInt64) {
        precondition((1...8).contains(width) && offset >= 0 && offset + width <= bytes.count)
        for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    /// The IEEE 754 binary16 bit pattern nearest to `f` (round to nearest, ties to even;
    /// overflow to infinity; NaN stays NaN).
    public static func halfBits(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xFF)
        let mant = bits & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 | UInt16(mant >> 13) : 0) }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            // Subnormal half (or zero): shift the full mantissa (with its hidden bit) into place.
            if e < -10 { return sign }
            let m = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rem = m & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && (h & 1) == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }  // may carry into the exponent: correct
        return sign | UInt16(h)
    }

    /// The value of an IEEE 754 binary16 bit pattern.
    public static func float(fromHalfBits h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        if exp == 0 {
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }
}
