// IndexMem — GGUF reader tests. Apache-2.0.

import IndexMemGGUF
import IndexMemTestSupport
import Testing

private func isTruncated(_ e: GGUFError) -> Bool { if case .truncated = e { true } else { false } }
private func isImplausible(_ e: GGUFError) -> Bool { if case .implausibleCount = e { true } else { false } }
private func isInvalidTensor(_ e: GGUFError) -> Bool { if case .invalidTensor = e { true } else { false } }
private func isInvalidAlignment(_ e: GGUFError) -> Bool { if case .invalidAlignment = e { true } else { false } }
private func isInvalidUTF8(_ e: GGUFError) -> Bool { if case .invalidUTF8 = e { true } else { false } }

/// A file with one raw metadata entry (and nothing else).
private func rawEntryFile(key: [UInt8] = Array("k".utf8), type: UInt32, payload: [UInt8]) -> [UInt8] {
    var w = GGUFWriter()
    w.addRaw(key: key, type: type, payload: payload)
    return w.bytes()
}

/// A file with one valid tensor "ok" and one raw tensor "t".
private func rawTensorFile(dims: [UInt64], type: UInt32 = 0, data: [UInt8] = [UInt8](repeating: 0, count: 64), offset: UInt64? = nil) -> [UInt8] {
    var w = GGUFWriter()
    w.addTensor(name: "ok", dimensions: [8], floats: Array(repeating: 1, count: 8))
    w.addRawTensor(name: "t", dimensions: dims, typeRaw: type, data: data, offset: offset)
    return w.bytes()
}

private func le64(_ v: UInt64) -> [UInt8] { GGUFWriter.le(v) }
private func le32(_ v: UInt32) -> [UInt8] { GGUFWriter.le(v) }

@Suite("GGUF malformed files")
struct GGUFMalformedTests {
    @Test("bad magic")
    func badMagic() {
        for magic in ["GGUG", "FUGG", "ggml", "GGJT", "\0\0\0\0"] {
            var w = smallWriter()
            w.magic = Array(magic.utf8)
            let m = w.magic
            let found = UInt32(m[0]) | UInt32(m[1]) << 8 | UInt32(m[2]) << 16 | UInt32(m[3]) << 24
            #expect(throws: GGUFError.badMagic(found: found)) { _ = try parse(w.bytes()) }
        }
        // Shorter than a magic.
        for n in 0..<4 {
            #expect(throws: GGUFError.truncated(offset: 0, needed: 4, fileSize: n)) { _ = try parse(Array("GGUF".utf8.prefix(n))) }
        }
    }

    @Test("unsupported versions", arguments: [0, 1, 4, 5, 0x0300_0000, UInt32.max] as [UInt32])
    func versions(version: UInt32) {
        var w = smallWriter()
        w.version = version
        #expect(throws: GGUFError.unsupportedVersion(version)) { _ = try parse(w.bytes()) }
    }

    @Test("every truncation of a small file throws; the full data section parses", arguments: [2, 3] as [UInt32])
    func truncations(version: UInt32) throws {
        for alignment in [1, 32] {
            let (bytes, layout) = smallWriter(version: version, alignment: alignment).build()
            for n in 0..<bytes.count {
                let prefix = Array(bytes.prefix(n))
                if n < layout.dataEnd {
                    let e = parseError(prefix)
                    #expect(e != nil, "prefix of \(n) of \(bytes.count) bytes parsed")
                    if let e, n < layout.headerEnd { #expect(isTruncated(e) || isImplausible(e), "prefix \(n): \(e)") }
                    if let e, n >= layout.headerEnd { #expect(isInvalidTensor(e), "prefix \(n): \(e)") }
                } else {
                    // Only the final padding is missing: still a complete file.
                    #expect(parseError(prefix) == nil, "prefix \(n) with all data should parse")
                }
            }
            #expect(parseError(bytes) == nil)
        }
        // Every prefix of a file with every value type and every tensor type.
        var w = GGUFWriter(version: version, alignment: 64)
        for (k, v) in allTypesMetadata { w.add(key: k, value: v) }
        for t in allTypesTensors(seed: 5) { w.addTensor(name: t.name, dimensions: t.dims, type: t.type, data: t.data) }
        let (bytes, layout) = w.build()
        var parsedEarly: [Int] = []
        for n in 0..<layout.dataEnd where parseError(Array(bytes.prefix(n))) == nil { parsedEarly.append(n) }
        #expect(parsedEarly.isEmpty, "prefixes that parsed: \(parsedEarly.prefix(10))")
        #expect(parseError(Array(bytes.prefix(layout.dataEnd))) == nil)
    }

    @Test("string lengths beyond the end of the file")
    func stringTooLong() {
        // A string value claiming more bytes than remain.
        // (The writer pads the header to 32 bytes, so a length of 4 would still fit.)
        for len in [100, 1000, 1 << 31, 1 << 63, UInt64.max] as [UInt64] {
            expectError(rawEntryFile(type: 8, payload: le64(len) + Array("abc".utf8)), "string length \(len)", matches: isTruncated)
        }
        // A key length, a tensor name length, overwritten in place.
        let (bytes, layout) = smallWriter().build()
        for role in [GGUFWriter.Layout.Role.keyLength, .stringLength, .tensorNameLength] {
            for field in layout.fields where field.role == role {
                for v in [UInt64(bytes.count), 1 << 40, UInt64.max] {
                    var b = bytes
                    GGUFWriter.patch(&b, at: field.offset, width: 8, value: v)
                    expectError(b, "\(role) at \(field.offset) = \(v)")
                }
            }
        }
    }

    @Test("absurd array counts")
    func arrayCounts() {
        for count in [1 << 63, UInt64.max, 1 << 32, 1000] as [UInt64] {
            for elementType in [0, 4, 8, 9] as [UInt32] {
                let file = rawEntryFile(type: 9, payload: le32(elementType) + le64(count) + [1, 2, 3, 4])
                expectError(file, "array of type \(elementType) with \(count) elements")
            }
        }
        expectError(rawEntryFile(type: 9, payload: le32(0) + le64(1 << 63) + [1]), matches: isImplausible)
        // The count fits the remaining bytes but the elements cannot (4-byte elements; the
        // entry ends at byte 57, padded to 64, so 15 bytes remain after the count): refused up front.
        let fourByte = rawEntryFile(type: 9, payload: le32(4) + le64(10) + [UInt8](repeating: 0, count: 8))
        #expect(throws: GGUFError.implausibleCount(what: "array length of 'k'", count: 10)) { _ = try parse(fourByte) }
        // Strings take at least 8 bytes each, nested arrays 12 (79 bytes remain after the count).
        expectError(rawEntryFile(type: 9, payload: le32(8) + le64(10) + [UInt8](repeating: 0, count: 60)), matches: isImplausible)
        expectError(rawEntryFile(type: 9, payload: le32(9) + le64(7) + [UInt8](repeating: 0, count: 60)), matches: isImplausible)
        #expect(parseError(rawEntryFile(type: 9, payload: le32(9) + le64(6) + [UInt8](repeating: 0, count: 60))) == nil)
        // Exactly as many elements as fit still parse (9 empty strings in 72 bytes + 4 padding).
        #expect(parseError(rawEntryFile(type: 9, payload: le32(8) + le64(9) + [UInt8](repeating: 0, count: 72))) == nil)
        // A nested array whose inner count is absurd.
        expectError(rawEntryFile(type: 9, payload: le32(9) + le64(1) + le32(0) + le64(UInt64.max) + [0]))
    }

    @Test("absurd tensor and metadata counts")
    func headerCounts() {
        let bytes = smallWriter().bytes()
        for v in [1 << 31, 1 << 32, 1 << 63, UInt64.max, UInt64(bytes.count)] as [UInt64] {
            var b = bytes
            GGUFWriter.patch(&b, at: 8, width: 8, value: v)
            #expect(throws: GGUFError.implausibleCount(what: "tensor count", count: v)) { _ = try parse(b) }
            b = bytes
            GGUFWriter.patch(&b, at: 16, width: 8, value: v)
            #expect(throws: GGUFError.implausibleCount(what: "metadata count", count: v)) { _ = try parse(b) }
        }
        // Counts that are plausible but wrong (one more than written) run off the end.
        var b = bytes
        GGUFWriter.patch(&b, at: 16, width: 8, value: 5)
        expectError(b, "one metadata entry too many")
        b = bytes
        GGUFWriter.patch(&b, at: 8, width: 8, value: 4)
        expectError(b, "one tensor too many")
    }

    @Test("unknown metadata value types")
    func unknownValueType() {
        for t in [13, 14, 100, UInt32.max] as [UInt32] {
            #expect(throws: GGUFError.unknownValueType(t, key: "k")) { _ = try parse(rawEntryFile(type: t, payload: [0, 0, 0, 0])) }
            // As an array element type.
            #expect(throws: GGUFError.unknownValueType(t, key: "k")) {
                _ = try parse(rawEntryFile(type: 9, payload: le32(t) + le64(1) + [0, 0, 0, 0]))
            }
        }
    }

    @Test("unknown tensor types", arguments: [4, 5, 9, 10, 11, 15, 16, 24, 28, 29, 31, 39, 40, UInt32.max] as [UInt32])
    func unknownTensorType(raw: UInt32) {
        let file = rawTensorFile(dims: [32], type: raw, data: [UInt8](repeating: 0, count: 256))
        #expect(throws: GGUFError.unknownTensorType(rawValue: raw, tensor: "t")) { _ = try parse(file) }
    }

    @Test("dimension counts outside 1...4", arguments: [0, 5, 8, UInt32.max] as [UInt32])
    func dimensionCounts(n: UInt32) {
        let dims = [UInt64](repeating: 1, count: min(Int(n), 8))
        let (bytes, layout) = {
            var w = GGUFWriter()
            w.addRawTensor(name: "t", dimensions: dims, typeRaw: 0, data: [0, 0, 0, 0])
            return w.build()
        }()
        var b = bytes
        let field = layout.fields.first { $0.role == .dimensionCount }!
        GGUFWriter.patch(&b, at: field.offset, width: 4, value: UInt64(n))
        let e = expectError(b, matches: isInvalidTensor)
        #expect(e?.description.contains("dimensions") == true)
    }

    @Test("zero and huge dimensions")
    func badDimensions() {
        for dims in [[0], [8, 0], [8, 1, 1, 0], [1 << 40 + 1], [1 << 63], [UInt64.max], [8, UInt64.max]] as [[UInt64]] {
            let e = expectError(rawTensorFile(dims: dims), "dims \(dims)", matches: isInvalidTensor)
            #expect(e?.description.contains("dimension") == true)
        }
    }

    @Test("element counts that overflow or are absurd")
    func elementOverflow() {
        for dims in [[1 << 40, 1 << 40], [1 << 32, 1 << 32, 1 << 32, 1 << 32], [1 << 21, 1 << 21],
                     [1 << 40, 2], [1 << 14, 1 << 14, 1 << 14]] as [[UInt64]] {
            let e = expectError(rawTensorFile(dims: dims), "dims \(dims)", matches: isInvalidTensor)
            #expect(e?.description.contains("too many elements") == true)
        }
        // Large but plausible shapes are rejected for their data range, not their count.
        expectError(rawTensorFile(dims: [1 << 20, 1 << 10]), matches: isInvalidTensor)
    }

    @Test("rows that are not whole quantization blocks")
    func partialBlocks() {
        for (type, row) in [(GGUFTensorType.q8_0, 33), (.q4_0, 16), (.q4_K, 128), (.q6_K, 300)] {
            expectError(rawTensorFile(dims: [UInt64(row), 1], type: type.rawValue, data: [UInt8](repeating: 0, count: 1024)),
                        "\(type) row \(row)", matches: isInvalidTensor)
        }
    }

    @Test("tensor data beyond the end of the file")
    func dataBeyondEnd() {
        for offset in [64, 1 << 20, 1 << 40, 1 << 62, UInt64.max & ~31] as [UInt64] {
            let e = expectError(rawTensorFile(dims: [16], offset: offset), "offset \(offset)", matches: isInvalidTensor)
            #expect(e?.description.contains("beyond the end") == true)
        }
        // Shape larger than the data written (the last tensor's data runs past the end).
        expectError(rawTensorFile(dims: [1024], data: [UInt8](repeating: 0, count: 16)), matches: isInvalidTensor)
    }

    @Test("misaligned tensor offsets")
    func misaligned() {
        for offset in [1, 4, 16, 33, 63] as [UInt64] {
            let e = expectError(rawTensorFile(dims: [16], offset: offset), "offset \(offset)", matches: isInvalidTensor)
            #expect(e?.description.contains("aligned") == true)
        }
        // With alignment 64, an offset that is only 32-aligned.
        var w = GGUFWriter(alignment: 64)
        w.addTensor(name: "a", dimensions: [4], floats: [1, 2, 3, 4])
        w.addRawTensor(name: "b", dimensions: [4], typeRaw: 0, data: [UInt8](repeating: 0, count: 16), offset: 32)
        expectError(w.bytes(), matches: isInvalidTensor)
    }

    @Test("alignments that are not positive powers of two")
    func badAlignment() {
        let values: [GGUFValue] = [.uint32(0), .uint32(3), .uint32(24), .uint32(48), .uint32(1 << 21), .uint32(.max),
                                   .int32(-32), .int64(.min), .uint64(.max), .uint64(1 << 40), .uint8(0), .int16(6)]
        func file(_ v: GGUFValue) -> [UInt8] {
            var w = GGUFWriter()
            w.add(key: "general.alignment", value: v)
            w.addTensor(name: "t", dimensions: [4], floats: [1, 2, 3, 4])
            return w.bytes()
        }
        for v in values { expectError(file(v), "alignment \(v)", matches: isInvalidAlignment) }
        // The error reports the value in the file.
        for (v, reported) in [(GGUFValue.uint32(24), UInt64(24)), (.uint32(1 << 21), 1 << 21), (.uint64(.max), .max), (.uint64(1 << 40), 1 << 40)] {
            #expect(throws: GGUFError.invalidAlignment(reported)) { _ = try parse(file(v)) }
        }
        #expect(GGUFError.invalidAlignment(1 << 21).description.contains("2097152"))
        // Values that are not integers at all.
        for v in [GGUFValue.float32(32), .float64(32), .string("32"), .array([.uint32(32)])] {
            #expect(throws: GGUFError.wrongValueType(key: "general.alignment", expected: "integer", found: v.typeName)) { _ = try parse(file(v)) }
        }
        // Powers of two up to 2^20 are fine (with no tensors, so no data to place).
        for a in [1, 2, 8, 64, 1 << 20] {
            var w = GGUFWriter()
            w.add(key: "general.alignment", value: .uint32(UInt32(a)))
            #expect((try? parse(w.bytes()))?.alignment == a)
        }
    }

    @Test("duplicate keys and tensor names")
    func duplicates() {
        var w = smallWriter()
        w.add(key: "llama.block_count", value: .uint32(3))
        #expect(throws: GGUFError.duplicateName("llama.block_count")) { _ = try parse(w.bytes()) }
        // Same key, different type.
        w = smallWriter()
        w.add(key: "flag", value: .string("x"))
        #expect(throws: GGUFError.duplicateName("flag")) { _ = try parse(w.bytes()) }

        w = smallWriter()
        w.addTensor(name: "b", dimensions: [4], floats: [1, 2, 3, 4])
        #expect(throws: GGUFError.duplicateName("b")) { _ = try parse(w.bytes()) }
    }

    @Test("invalid UTF-8 in keys, string values and tensor names")
    func invalidUTF8() {
        let bad: [[UInt8]] = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE6, 0x97], [0x61, 0x80, 0x62], [0xF4, 0x90, 0x80, 0x80]]
        for b in bad {
            // Key: the string starts after the 24-byte header and the 8-byte length.
            #expect(throws: GGUFError.invalidUTF8(offset: 32)) { _ = try parse(rawEntryFile(key: b, type: 4, payload: [0, 0, 0, 0])) }
            // String value, and a string inside an array.
            expectError(rawEntryFile(type: 8, payload: GGUFWriter.stringBytes(b)), matches: isInvalidUTF8)
            expectError(rawEntryFile(type: 9, payload: le32(8) + le64(2) + GGUFWriter.stringBytes("ok") + GGUFWriter.stringBytes(b)),
                        matches: isInvalidUTF8)
            // Tensor name.
            var w = GGUFWriter()
            w.addRawTensor(GGUFWriter.Tensor(name: b, dimensions: [1], typeRaw: 0, data: [0, 0, 0, 0]))
            expectError(w.bytes(), matches: isInvalidUTF8)
        }
    }

    @Test("bool bytes other than 0 and 1")
    func badBool() {
        for byte in [2, 0x80, 0xFF] as [UInt8] {
            let e = expectError(rawEntryFile(type: 7, payload: [byte])) {
                if case .wrongValueType(key: "k", _, _) = $0 { true } else { false }
            }
            #expect(e?.description.contains("bool") == true)
            expectError(rawEntryFile(type: 9, payload: le32(7) + le64(3) + [0, 1, byte]))
        }
        // 0 and 1 are fine.
        #expect(parseError(rawEntryFile(type: 7, payload: [1])) == nil)
    }

    @Test("deeply nested arrays are refused without recursing deeply")
    func deepNesting() throws {
        func nested(_ depth: Int) -> GGUFValue {
            var v = GGUFValue.array([.uint8(1)])
            for _ in 1..<depth { v = .array([v]) }
            return v
        }
        var w = GGUFWriter()
        w.add(key: "ok", value: nested(4))
        let file = try parse(w.bytes())
        #expect(file.metadata["ok"] == nested(4))
        for depth in [5, 6, 50] {
            w = GGUFWriter()
            w.add(key: "deep", value: nested(depth))
            expectError(w.bytes(), "depth \(depth)", matches: isImplausible)
        }
        // 100 000 levels of raw nesting (12 bytes each): must throw, not overflow the stack.
        var payload: [UInt8] = []
        for _ in 0..<100_000 { payload += le32(9) + le64(1) }
        payload += le32(0) + le64(0)
        expectError(rawEntryFile(type: 9, payload: Array(payload.dropFirst(4))), matches: isImplausible)
    }
}
