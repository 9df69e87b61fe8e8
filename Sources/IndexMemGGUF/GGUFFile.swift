// IndexMem — GGUF reader. Apache-2.0.
//
// Layout (little-endian): magic "GGUF", version u32, tensor count u64, metadata count u64
// (u32 counts in version 1, not supported), metadata key/value pairs, tensor infos
// (name, n_dims u32, dims u64[n], type u32, offset u64), padding to `general.alignment`,
// then the tensor data. Every read is bounds-checked: the file is untrusted input.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Mapped bytes

/// Read-only bytes of a GGUF file: memory-mapped from disk, or owned (tests, fuzzing).
public final class GGUFBytes: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    private let release: () -> Void

    init(base: UnsafeRawPointer, count: Int, release: @escaping () -> Void) {
        self.base = base
        self.count = count
        self.release = release
    }

    /// Maps a file read-only. The mapping lives as long as this object.
    public static func map(path: String) throws(GGUFError) -> GGUFBytes {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // a FIFO must not block the open
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .cannotOpen(path: path, reason: "it is a directory") }
        // A device or pipe (/dev/zero) has no size to map and may never end.
        if (st.st_mode & S_IFMT) != S_IFREG { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw .truncated(offset: 0, needed: 4, fileSize: 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        return GGUFBytes(base: UnsafeRawPointer(p), count: size) { munmap(p, size) }
    }

    /// Copies bytes into owned memory.
    public static func copy(_ bytes: [UInt8]) -> GGUFBytes {
        let n = max(bytes.count, 1)
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) } }
        return GGUFBytes(base: UnsafeRawPointer(p), count: bytes.count) { p.deallocate() }
    }

    deinit { release() }
}

// MARK: - Tensor info

/// Where one tensor's data lives in the file, and its shape.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// ggml order: `dimensions[0]` is the innermost (contiguous) dimension, i.e. the row length.
    public let dimensions: [Int]
    public let type: GGUFTensorType
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Elements in one row (the innermost dimension).
    public var rowLength: Int { dimensions.first ?? 1 }
    /// Number of rows (product of the outer dimensions).
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
    public var rowBytes: Int { rowLength / type.blockElements * type.blockBytes }
}

// MARK: - File

/// A parsed GGUF file: metadata, tensor infos, and access to tensor bytes.
public final class GGUFFile: @unchecked Sendable {
    public let bytes: GGUFBytes
    public let version: UInt32
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let tensorsByName: [String: Int]
    public let alignment: Int
    public let dataOffset: Int
    /// The path this file was read from, if any.
    public let path: String?

    /// Opens and validates a GGUF file from disk (memory-mapped).
    public convenience init(path: String) throws(GGUFError) {
        try self.init(bytes: GGUFBytes.map(path: path), path: path)
    }

    /// Parses GGUF bytes. Throws on any malformation; never reads out of bounds.
    public init(bytes: GGUFBytes, path: String? = nil) throws(GGUFError) {
        self.bytes = bytes
        self.path = path
        var r = ByteReader(base: bytes.base, count: bytes.count)
        let magic = try r.u32()
        guard magic == 0x4655_4747 else { throw .badMagic(found: magic) }
        let version = try r.u32()
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        self.version = version
        let tensorCount = try r.u64()
        let kvCount = try r.u64()
        // Each tensor info needs at least 8+4+4+8 bytes, each key/value at least 8+1+4+1.
        guard tensorCount <= UInt64(bytes.count / 24) else { throw .implausibleCount(what: "tensor count", count: tensorCount) }
        guard kvCount <= UInt64(bytes.count / 13) else { throw .implausibleCount(what: "metadata count", count: kvCount) }

        var keys: [String] = []
        var meta: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(kvCount))
        for _ in 0..<Int(kvCount) {
            let key = try r.string()
            let typeRaw = try r.u32()
            guard let kind = GGUFValue.Kind(rawValue: typeRaw) else { throw .unknownValueType(typeRaw, key: key) }
            let value = try r.value(kind, key: key, depth: 0)
            guard meta[key] == nil else { throw .duplicateName(key) }
            meta[key] = value
            keys.append(key)
        }
        metadataKeys = keys
        metadata = meta

        var align = 32
        if let a = meta["general.alignment"] {
            guard let v = a.intValue else {
                if case .uint64(let big) = a { throw .invalidAlignment(big) }
                throw .wrongValueType(key: "general.alignment", expected: "integer", found: a.typeName)
            }
            guard v > 0, v & (v - 1) == 0, v <= 1 << 20 else { throw .invalidAlignment(UInt64(truncatingIfNeeded: v)) }
            align = v
        }
        alignment = align

        struct RawInfo { var name: String; var dims: [Int]; var typeRaw: UInt32; var offset: UInt64 }
        var raw: [RawInfo] = []
        raw.reserveCapacity(Int(tensorCount))
        for _ in 0..<Int(tensorCount) {
            let name = try r.string()
            let nDims = try r.u32()
            guard nDims >= 1, nDims <= 4 else { throw .invalidTensor(name: name, reason: "\(nDims) dimensions (1 to 4 allowed)") }
            var dims: [Int] = []
            for _ in 0..<Int(nDims) {
                let d = try r.u64()
                guard d >= 1, d <= UInt64(1) << 40 else { throw .invalidTensor(name: name, reason: "dimension \(d)") }
                dims.append(Int(d))
            }
            let typeRaw = try r.u32()
            let offset = try r.u64()
            raw.append(RawInfo(name: name, dims: dims, typeRaw: typeRaw, offset: offset))
        }
        let headerEnd = r.offset
        let dataStart = (headerEnd + align - 1) / align * align
        dataOffset = dataStart

        var infos: [GGUFTensorInfo] = []
        var byName: [String: Int] = [:]
        infos.reserveCapacity(raw.count)
        for t in raw {
            guard let type = GGUFTensorType(rawValue: t.typeRaw) else {
                throw .unknownTensorType(rawValue: t.typeRaw, tensor: t.name)
            }
            guard t.dims[0] % type.blockElements == 0 else {
                throw .invalidTensor(name: t.name, reason: "row length \(t.dims[0]) is not a multiple of \(type)'s block of \(type.blockElements)")
            }
            var elements = 1
            for d in t.dims {
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, m <= 1 << 40 else { throw .invalidTensor(name: t.name, reason: "too many elements") }
                elements = m
            }
            let size = elements / type.blockElements * type.blockBytes
            guard t.offset % UInt64(align) == 0 else {
                throw .invalidTensor(name: t.name, reason: "data offset \(t.offset) is not aligned to \(align)")
            }
            guard t.offset <= UInt64(bytes.count), dataStart + Int(t.offset) + size <= bytes.count else {
                throw .invalidTensor(name: t.name, reason: "data [\(t.offset), +\(size)) lies beyond the end of the file (\(bytes.count) bytes)")
            }
            guard byName[t.name] == nil else { throw .duplicateName(t.name) }
            byName[t.name] = infos.count
            infos.append(GGUFTensorInfo(name: t.name, dimensions: t.dims, type: type, fileOffset: dataStart + Int(t.offset), byteCount: size))
        }
        tensors = infos
        tensorsByName = byName
    }

    // MARK: Access

    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorsByName[name].map { tensors[$0] } }

    /// The tensor's bytes (valid while this file is alive).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawPointer { bytes.base + tensor.fileOffset }

    public var architecture: String? { metadata["general.architecture"]?.stringValue }

    public func requireInt(_ key: String) throws(GGUFError) -> Int {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let i = v.intValue else { throw .wrongValueType(key: key, expected: "integer", found: v.typeName) }
        return i
    }

    public func int(_ key: String) throws(GGUFError) -> Int? {
        guard let v = metadata[key] else { return nil }
        guard let i = v.intValue else { throw .wrongValueType(key: key, expected: "integer", found: v.typeName) }
        return i
    }

    public func double(_ key: String) throws(GGUFError) -> Double? {
        guard let v = metadata[key] else { return nil }
        guard let d = v.doubleValue else { throw .wrongValueType(key: key, expected: "number", found: v.typeName) }
        return d
    }

    public func string(_ key: String) throws(GGUFError) -> String? {
        guard let v = metadata[key] else { return nil }
        guard let s = v.stringValue else { throw .wrongValueType(key: key, expected: "string", found: v.typeName) }
        return s
    }

    public func bool(_ key: String) throws(GGUFError) -> Bool? {
        guard let v = metadata[key] else { return nil }
        guard let b = v.boolValue else { throw .wrongValueType(key: key, expected: "bool", found: v.typeName) }
        return b
    }

    public func stringArray(_ key: String) throws(GGUFError) -> [String]? {
        guard let v = metadata[key] else { return nil }
        guard let a = v.arrayValue else { throw .wrongValueType(key: key, expected: "array of strings", found: v.typeName) }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let s = e.stringValue else { throw .wrongValueType(key: key, expected: "array of strings", found: "array of \(e.typeName)") }
            out.append(s)
        }
        return out
    }

    public func doubleArray(_ key: String) throws(GGUFError) -> [Double]? {
        guard let v = metadata[key] else { return nil }
        guard let a = v.arrayValue else { throw .wrongValueType(key: key, expected: "array of numbers", found: v.typeName) }
        var out: [Double] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let d = e.doubleValue else { throw .wrongValueType(key: key, expected: "array of numbers", found: "array of \(e.typeName)") }
            out.append(d)
        }
        return out
    }

    public func intArray(_ key: String) throws(GGUFError) -> [Int]? {
        guard let v = metadata[key] else { return nil }
        guard let a = v.arrayValue else { throw .wrongValueType(key: key, expected: "array of integers", found: v.typeName) }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let d = e.intValue else { throw .wrongValueType(key: key, expected: "array of integers", found: "array of \(e.typeName)") }
            out.append(d)
        }
        return out
    }
}

// MARK: - Bounds-checked reader

struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    var offset = 0

    init(base: UnsafeRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    @inline(__always)
    mutating func need(_ n: Int) throws(GGUFError) {
        guard n >= 0, n <= count - offset else { throw .truncated(offset: offset, needed: n, fileSize: count) }
    }

    mutating func u8() throws(GGUFError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    mutating func u16() throws(GGUFError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    mutating func u32() throws(GGUFError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64() throws(GGUFError) -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func string() throws(GGUFError) -> String {
        let len = try u64()
        guard len <= UInt64(count - offset) else { throw .truncated(offset: offset, needed: Int(clamping: len), fileSize: count) }
        let n = Int(len)
        let start = offset
        let buffer = UnsafeRawBufferPointer(start: base + offset, count: n)
        offset += n
        guard let s = String(validating: buffer.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw .invalidUTF8(offset: start)
        }
        return s
    }

    mutating func value(_ kind: GGUFValue.Kind, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch kind {
        case .uint8: return .uint8(try u8())
        case .int8: return .int8(Int8(bitPattern: try u8()))
        case .uint16: return .uint16(try u16())
        case .int16: return .int16(Int16(bitPattern: try u16()))
        case .uint32: return .uint32(try u32())
        case .int32: return .int32(Int32(bitPattern: try u32()))
        case .float32: return .float32(Float(bitPattern: try u32()))
        case .bool:
            let b = try u8()
            guard b <= 1 else { throw .wrongValueType(key: key, expected: "bool (0 or 1)", found: "byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string())
        case .uint64: return .uint64(try u64())
        case .int64: return .int64(Int64(bitPattern: try u64()))
        case .float64: return .float64(Double(bitPattern: try u64()))
        case .array:
            guard depth < 4 else { throw .implausibleCount(what: "array nesting depth of '\(key)'", count: UInt64(depth)) }
            let typeRaw = try u32()
            guard let elementKind = GGUFValue.Kind(rawValue: typeRaw) else { throw .unknownValueType(typeRaw, key: key) }
            let n = try u64()
            // Every element takes at least its smallest encoding; checking that here (not just
            // one byte each) keeps a corrupt count from reserving many times the file's size.
            let minBytes: Int
            switch elementKind {
            case .uint8, .int8, .bool: minBytes = 1
            case .uint16, .int16: minBytes = 2
            case .uint32, .int32, .float32: minBytes = 4
            case .uint64, .int64, .float64, .string: minBytes = 8
            case .array: minBytes = 12
            }
            guard n <= UInt64((count - offset) / minBytes) else { throw .implausibleCount(what: "array length of '\(key)'", count: n) }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(elementKind, key: key, depth: depth + 1)) }
            return .array(items)
        }
    }
}
