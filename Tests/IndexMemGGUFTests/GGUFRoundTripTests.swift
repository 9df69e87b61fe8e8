// IndexMem — GGUF reader tests. Apache-2.0.

import Foundation
import IndexMemGGUF
import IndexMemTestSupport
import Testing

/// Every metadata value type, including extremes, non-ASCII strings and nested arrays.
let allTypesMetadata: [(String, GGUFValue)] = [
    ("general.architecture", .string("llama")),
    ("u8.min", .uint8(0)), ("u8.max", .uint8(.max)),
    ("i8.min", .int8(.min)), ("i8.max", .int8(.max)),
    ("u16.max", .uint16(.max)), ("i16.min", .int16(.min)),
    ("u32.max", .uint32(.max)), ("i32.min", .int32(.min)), ("i32.neg", .int32(-1)),
    ("u64.max", .uint64(.max)), ("i64.min", .int64(.min)), ("i64.max", .int64(.max)),
    ("f32.pi", .float32(.pi)), ("f32.negzero", .float32(-0.0)), ("f32.inf", .float32(-.infinity)),
    ("f32.subnormal", .float32(.leastNonzeroMagnitude)), ("f32.nan", .float32(Float(nan: 0x1234, signaling: false))),
    ("f64.e", .float64(M_E)), ("f64.max", .float64(.greatestFiniteMagnitude)), ("f64.nan", .float64(-.nan)),
    ("bool.true", .bool(true)), ("bool.false", .bool(false)),
    ("str.empty", .string("")), ("str.ascii", .string("hello, world")),
    ("str.unicode", .string("héllo wörld — 日本語 🦙 \u{0}nul inside, Ω≈ç√")),
    ("str.long", .string(String(repeating: "ab€", count: 1000))),
    ("arr.empty", .array([])),
    ("arr.u8", .array([.uint8(0), .uint8(1), .uint8(255)])),
    ("arr.i8", .array([.int8(-128), .int8(127)])),
    ("arr.u16", .array([.uint16(1), .uint16(65535)])),
    ("arr.i16", .array([.int16(-1)])),
    ("arr.u32", .array((0..<100).map { .uint32(UInt32($0 * 7919)) })),
    ("arr.i32", .array([.int32(.min), .int32(0), .int32(.max)])),
    ("arr.u64", .array([.uint64(.max), .uint64(0)])),
    ("arr.i64", .array([.int64(.min), .int64(42)])),
    ("arr.f32", .array([.float32(0.1), .float32(-2.5e-30), .float32(.infinity)])),
    ("arr.f64", .array([.float64(1e300), .float64(-0.0)])),
    ("arr.bool", .array([.bool(true), .bool(false), .bool(true)])),
    ("arr.str", .array([.string("a"), .string(""), .string("ü"), .string("▁the"), .string("<|im_start|>")])),
    ("arr.nested.str", .array([.array([.string("x"), .string("ÿ")]), .array([]), .array([.string("")])])),
    ("arr.nested.num", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])])),
    ("arr.nested.mixed", .array([.array([.uint8(1)]), .array([.string("s")]), .array([.float64(2)])])),
    ("arr.nested3", .array([.array([.array([.uint64(1), .uint64(2)])]), .array([.array([])])])),
    ("arr.nested4", .array([.array([.array([.array([.bool(true)])])])])),
    ("key.ünïcödé.名前", .string("keys may be any UTF-8 in this reader")),
]

/// Tensors of every supported type and 1 to 4 dimensions, with random data.
func allTypesTensors(seed: UInt64) -> [(name: String, dims: [Int], type: GGUFTensorType, data: [UInt8])] {
    var rng = SplitMix64(seed: seed)
    var out: [(String, [Int], GGUFTensorType, [UInt8])] = []
    for (i, type) in GGUFTensorType.allCases.enumerated() {
        let shapes: [[Int]] = [[type.blockElements], [type.blockElements * 2, 3], [type.blockElements, 1, 2], [type.blockElements, 2, 1, 3]]
        let dims = shapes[i % shapes.count]
        let bytes = GGUFWriter.byteCount(type: type, elements: dims.reduce(1, *))
        out.append(("blk.\(i).\(type).weight", dims, type, rng.bytes(bytes)))
    }
    // A few more with odd sizes for F32/F16 (data not a multiple of the alignment).
    out.append(("odd.f32", [7], .f32, rng.bytes(28)))
    out.append(("odd.f16", [5, 3], .f16, rng.bytes(30)))
    out.append(("q8_0.big", [64, 5], .q8_0, rng.bytes(10 * 34)))
    out.append(("q4_K.big", [512, 2], .q4_K, rng.bytes(4 * 144)))
    return out
}

@Suite("GGUF round trip")
struct GGUFRoundTripTests {
    @Test("every value type, nested arrays and every tensor type read back exactly",
          arguments: [2, 3] as [UInt32], [1, 8, 32, 64, 4096])
    func roundTrip(version: UInt32, alignment: Int) throws {
        var w = GGUFWriter(version: version, alignment: alignment)
        for (k, v) in allTypesMetadata { w.add(key: k, value: v) }
        let tensors = allTypesTensors(seed: UInt64(alignment) &* 31 &+ UInt64(version))
        for t in tensors { w.addTensor(name: t.name, dimensions: t.dims, type: t.type, data: t.data) }
        let (bytes, layout) = w.build()

        let file = try parse(bytes)
        #expect(file.version == version)
        #expect(file.alignment == alignment)
        #expect(file.dataOffset == layout.dataOffset)
        #expect(file.dataOffset % alignment == 0)

        var expectedKeys = allTypesMetadata.map(\.0)
        if alignment != 32 { expectedKeys.insert("general.alignment", at: 0) }
        #expect(file.metadataKeys == expectedKeys)
        #expect(file.metadata.count == expectedKeys.count)
        for (k, v) in allTypesMetadata {
            let got = try #require(file.metadata[k], "missing key \(k)")
            #expect(sameValue(got, v), "key \(k): wrote \(v), read \(got)")
        }
        if alignment != 32 { #expect(file.metadata["general.alignment"] == .uint32(UInt32(alignment))) }

        #expect(file.tensors.count == tensors.count)
        for (i, t) in tensors.enumerated() {
            let info = file.tensors[i]
            #expect(info.name == t.name)
            #expect(info.dimensions == t.dims)
            #expect(info.type == t.type)
            #expect(info.byteCount == t.data.count)
            #expect(info.fileOffset == layout.tensorData[i].lowerBound)
            #expect(info.fileOffset - file.dataOffset == Int(layout.tensorOffsets[i]))
            #expect(info.fileOffset % alignment == 0)
            #expect(tensorBytes(file, info) == t.data, "tensor \(t.name) data differs")
            #expect(file.tensor(t.name)?.name == t.name)
            #expect(info.elementCount == t.dims.reduce(1, *))
            #expect(info.rowLength == t.dims[0])
            #expect(info.rowCount == t.dims.dropFirst().reduce(1, *))
            #expect(info.rowBytes * info.rowCount == info.byteCount)
        }
        #expect(invariantViolation(file) == nil)
        #expect(file.tensor("no such tensor") == nil)
    }

    @Test("F32 and F16 convenience tensors hold the values given")
    func floatTensors() throws {
        var rng = SplitMix64(seed: 42)
        let floats = rng.floats(24, -10, 10)
        let halves: [Float] = [0, -0.0, 1, -2, 0.333, 65504, 1e-7, 6e-8, .infinity, 70000] + rng.floats(6)
        var w = GGUFWriter()
        w.addTensor(name: "f32", dimensions: [6, 4], floats: floats)
        w.addTensor(name: "f16", dimensions: [8, 2], halves: halves)
        let file = try parse(w.bytes())
        let f32 = try #require(file.tensor("f32"))
        let f16 = try #require(file.tensor("f16"))
        #expect(f32.type == .f32 && f16.type == .f16)
        let p32 = file.data(of: f32)
        let read32 = (0..<24).map { Float(bitPattern: UInt32(littleEndian: p32.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        #expect(read32 == floats)
        let p16 = file.data(of: f16)
        let read16 = (0..<16).map { GGUFWriter.float(fromHalfBits: UInt16(littleEndian: p16.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        for (got, want) in zip(read16, halves) {
            #expect(got == GGUFWriter.float(fromHalfBits: GGUFWriter.halfBits(want)))
            if want.isFinite && abs(want) < 65504 { #expect(abs(got - want) <= max(abs(want) * 1e-3, 6e-8)) }
        }
        #expect(read16[8] == .infinity && read16[9] == .infinity)  // overflow rounds to infinity
    }

    #if !(os(macOS) && arch(x86_64))
    @Test("the writer's float-to-half conversion matches Float16 exactly")
    func halfConversion() {
        var rng = SplitMix64(seed: 3)
        var values: [Float] = [0, -0.0, 1, -1, 65504, 65519, 65520, 1e-8, 2.98e-8, 2.9802322e-8, 5.9604645e-8,
                               6.1035156e-5, 6.097555e-5, .infinity, -.infinity, .greatestFiniteMagnitude,
                               .leastNonzeroMagnitude, 1.0009765625, 1.00048828125, 1.000732421875]
        for _ in 0..<20000 {
            values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))
        }
        for _ in 0..<20000 { values.append(rng.float(-70000, 70000)) }
        for _ in 0..<5000 { values.append(rng.float(-1e-4, 1e-4)) }
        var mismatches = 0
        for v in values {
            let want = Float16(v)
            let got = GGUFWriter.halfBits(v)
            if v.isNaN {
                if !GGUFWriter.float(fromHalfBits: got).isNaN { mismatches += 1 }
            } else if got != want.bitPattern {
                mismatches += 1
            } else if GGUFWriter.float(fromHalfBits: got).bitPattern != Float(want).bitPattern {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }
    #endif

    @Test("a file with no tensors and no metadata parses", arguments: [2, 3] as [UInt32])
    func emptyFile(version: UInt32) throws {
        let bytes = GGUFWriter(version: version).bytes()
        #expect(bytes.count == 32)  // 24-byte header padded to the alignment
        #expect(parseError(Array(bytes.prefix(24))) == nil)  // the padding is optional without tensors
        let file = try parse(bytes)
        #expect(file.version == version)
        #expect(file.metadata.isEmpty && file.tensors.isEmpty)
        #expect(file.alignment == 32)
    }

    @Test("the header bytes are exactly the spec's layout")
    func exactBytes() throws {
        var w = GGUFWriter(version: 3, alignment: 8, writeAlignmentKey: false)
        w.add(key: "k", value: .uint16(0x0102))
        w.addTensor(name: "t", dimensions: [2], floats: [1, -2])
        let b = w.bytes()
        // The reader assumes alignment 32 here, so the writer's 8-byte layout is only for
        // checking bytes; the key-less file must still be parsed with a 32 alignment.
        var want: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0]
        want += [1, 0, 0, 0, 0, 0, 0, 0] + Array("k".utf8) + [2, 0, 0, 0] + [0x02, 0x01]
        want += [1, 0, 0, 0, 0, 0, 0, 0] + Array("t".utf8) + [1, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0]
        want += [0, 0, 0, 0, 0, 0, 0, 0]  // offset 0
        #expect(Array(b.prefix(want.count)) == want)
        #expect(want.count == 72)  // 24 header + 15 key/value + 33 tensor info: already 8-aligned
        #expect(Array(b[72..<80]) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])  // 1.0f, -2.0f
        #expect(b.count == 80)
        // Alignment 32 (no key): data would start at 96, past the end of this 80-byte file.
        expectError(b) { if case .invalidTensor = $0 { true } else { false } }
    }

    @Test("GGUFFile(path:) maps a written file and reads the same as from memory")
    func pathRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-gguf-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("small.gguf").path
        let w = smallWriter(alignment: 64)
        try w.write(to: path)
        let mapped = try GGUFFile(path: path)
        let owned = try parse(w.bytes())
        #expect(mapped.path == path)
        #expect(mapped.bytes.count == w.bytes().count)
        #expect(mapped.metadataKeys == owned.metadataKeys)
        #expect(mapped.metadata == owned.metadata)
        #expect(mapped.tensors.map(\.name) == owned.tensors.map(\.name))
        for (a, b) in zip(mapped.tensors, owned.tensors) {
            #expect(a.fileOffset == b.fileOffset)
            #expect(tensorBytes(mapped, a) == tensorBytes(owned, b))
        }

        // Opening failures are typed too.
        #expect(throws: GGUFError.self) { _ = try GGUFFile(path: dir.appendingPathComponent("missing.gguf").path) }
        let dirError = #expect(throws: GGUFError.self) { _ = try GGUFFile(path: dir.path) }
        if let dirError { #expect({ if case .cannotOpen = dirError { true } else { false } }()) }
        let empty = dir.appendingPathComponent("empty.gguf").path
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(throws: GGUFError.truncated(offset: 0, needed: 4, fileSize: 0)) { _ = try GGUFFile(path: empty) }
        let short = dir.appendingPathComponent("short.gguf").path
        try Data(Array(w.bytes().prefix(40))).write(to: URL(fileURLWithPath: short))
        #expect(throws: GGUFError.self) { _ = try GGUFFile(path: short) }
    }

    @Test("typed accessors return values and name wrong types")
    func accessors() throws {
        var w = GGUFWriter()
        w.add(key: "general.architecture", value: .string("llama"))
        w.add(key: "n", value: .uint32(12))
        w.add(key: "big", value: .uint64(.max))
        w.add(key: "eps", value: .float32(1e-5))
        w.add(key: "b", value: .bool(true))
        w.add(key: "toks", value: .array([.string("a"), .string("b")]))
        w.add(key: "scores", value: .array([.float32(-1), .float32(0.5)]))
        w.add(key: "types", value: .array([.int32(1), .int32(3)]))
        let f = try parse(w.bytes())
        #expect(f.architecture == "llama")
        #expect(try f.requireInt("n") == 12)
        #expect(try f.int("absent") == nil)
        #expect(try f.double("eps") == Double(Float(1e-5)))
        #expect(try f.bool("b") == true)
        #expect(try f.stringArray("toks") == ["a", "b"])
        #expect(try f.doubleArray("scores") == [-1, 0.5])
        #expect(try f.intArray("types") == [1, 3])
        #expect(throws: GGUFError.missingKey("absent")) { _ = try f.requireInt("absent") }
        #expect(throws: GGUFError.wrongValueType(key: "general.architecture", expected: "integer", found: "string")) {
            _ = try f.requireInt("general.architecture")
        }
        #expect(throws: GGUFError.self) { _ = try f.requireInt("big") }  // does not fit an Int
        #expect(throws: GGUFError.self) { _ = try f.stringArray("scores") }
        #expect(throws: GGUFError.self) { _ = try f.string("n") }
        #expect(throws: GGUFError.self) { _ = try f.intArray("toks") }
    }
}
