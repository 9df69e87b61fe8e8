// IndexMem — GGUF reader tests. Apache-2.0.

import IndexMemGGUF
import IndexMemTestSupport
import Testing

/// Parses owned bytes.
func parse(_ bytes: [UInt8]) throws(GGUFError) -> GGUFFile {
    try GGUFFile(bytes: .copy(bytes))
}

/// The error parsing `bytes` throws, or nil if it parses.
func parseError(_ bytes: [UInt8]) -> GGUFError? {
    do {
        _ = try parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// Expects parsing `bytes` to throw a `GGUFError` for which `matches` holds.
@discardableResult
func expectError(
    _ bytes: [UInt8], _ what: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    matches: (GGUFError) -> Bool = { _ in true }
) -> GGUFError? {
    let error = #expect(throws: GGUFError.self, what, sourceLocation: sourceLocation) { _ = try parse(bytes) }
    if let error {
        #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
    }
    return error
}

/// The facts every successfully parsed file must satisfy, whatever its bytes: every tensor's
/// data lies inside the file, aligned, and has the size its type and shape imply.
/// Returns a description of the first violation, or nil.
func invariantViolation(_ file: GGUFFile) -> String? {
    let size = file.bytes.count
    guard file.alignment > 0, file.alignment & (file.alignment - 1) == 0 else { return "alignment \(file.alignment)" }
    guard file.dataOffset % file.alignment == 0 else { return "data offset \(file.dataOffset) unaligned" }
    guard file.metadataKeys.count == file.metadata.count else { return "metadata keys/dictionary disagree" }
    guard file.tensorsByName.count == file.tensors.count else { return "tensor names not unique" }
    for (i, t) in file.tensors.enumerated() {
        guard file.tensorsByName[t.name] == i else { return "tensorsByName[\(t.name)] wrong" }
        guard (1...4).contains(t.dimensions.count), t.dimensions.allSatisfy({ $0 >= 1 }) else {
            return "tensor \(t.name) dims \(t.dimensions)"
        }
        var elements = 1
        for d in t.dimensions {
            let (m, o) = elements.multipliedReportingOverflow(by: d)
            if o { return "tensor \(t.name) element count overflows" }
            elements = m
        }
        guard elements % t.type.blockElements == 0 else { return "tensor \(t.name) partial block" }
        guard t.byteCount == elements / t.type.blockElements * t.type.blockBytes else { return "tensor \(t.name) byte count" }
        guard t.fileOffset >= file.dataOffset else { return "tensor \(t.name) starts before the data section" }
        guard (t.fileOffset - file.dataOffset) % file.alignment == 0 else { return "tensor \(t.name) unaligned" }
        guard t.byteCount <= size, t.fileOffset <= size - t.byteCount else {
            return "tensor \(t.name) data [\(t.fileOffset), +\(t.byteCount)) outside the file of \(size) bytes"
        }
    }
    return nil
}

/// A sum over every tensor byte (reads all of them, so an out-of-bounds range would show
/// up under the address sanitizer).
func touchAllTensorBytes(_ file: GGUFFile) -> UInt64 {
    var sum: UInt64 = 0
    for t in file.tensors {
        let p = file.data(of: t)
        for i in 0..<t.byteCount { sum &+= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) }
    }
    return sum
}

/// The tensor's bytes.
func tensorBytes(_ file: GGUFFile, _ t: GGUFTensorInfo) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: file.data(of: t), count: t.byteCount))
}

/// Structural equality for metadata values that treats NaNs with equal bits as equal.
func sameValue(_ a: GGUFValue, _ b: GGUFValue) -> Bool {
    switch (a, b) {
    case (.float32(let x), .float32(let y)): return x.bitPattern == y.bitPattern
    case (.float64(let x), .float64(let y)): return x.bitPattern == y.bitPattern
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
    default: return a == b
    }
}

/// A small valid file: a few metadata entries and three tensors.
func smallWriter(version: UInt32 = 3, alignment: Int = 32) -> GGUFWriter {
    var w = GGUFWriter(version: version, alignment: alignment)
    w.add(key: "general.architecture", value: .string("llama"))
    w.add(key: "llama.block_count", value: .uint32(2))
    w.add(key: "tokenizer.ggml.tokens", value: .array([.string("a"), .string("é"), .string("")]))
    w.add(key: "flag", value: .bool(true))
    w.addTensor(name: "a", dimensions: [4, 2], floats: [1, 2, 3, 4, 5, 6, 7, 8])
    w.addTensor(name: "b", dimensions: [3], halves: [0.5, -1, 2])
    var rng = SplitMix64(seed: 7)
    w.addTensor(name: "c", dimensions: [32], type: .q8_0, data: rng.bytes(34))
    return w
}
