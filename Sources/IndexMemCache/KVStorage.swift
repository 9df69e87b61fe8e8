// IndexMem — cache. Apache-2.0.
//
// Keys and values of one layer, per KV head, as f16 (llama.cpp's default KV type) or as
// Q8_0 blocks (`KVEntryType`).
// f16: keys are rows (slot, headDimension). Values are kept in tiles of 8 slots transposed to
// (headDimension, 8), so the attention kernel can accumulate `sum_j p_j v_j` in eight lanes by
// slot index, as llama.cpp's non-flash attention does with its transposed V cache; appending
// still writes one small tile.
// q8_0: keys and values are both rows of headDimension / 32 blocks (llama.cpp's quantized V
// needs flash attention, whose V is not transposed either), read by `Q8AttentionKernel`.
// Memory is reserved with an anonymous mapping: pages are zero and only become resident as
// slots fill.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IndexMemKernels

// MARK: - Storage

/// Keys and values of `kvHeads` heads, each with up to `capacity` slots.
public final class KVStorage: @unchecked Sendable {
    public let kvHeads: Int
    public let headDimension: Int
    /// Slots per head (a multiple of 8).
    public let capacity: Int
    /// How keys and values are stored.
    public let entryType: KVEntryType
    /// Bytes of one key row (and of one value row for q8_0).
    public let rowBytes: Int
    /// f16: (kvHeads, capacity, headDimension) f16 bits. q8_0: the same memory as `keyBytes`.
    public let keys: UnsafeMutablePointer<UInt16>
    /// f16: (kvHeads, capacity / 8, headDimension, 8) f16 bits. q8_0: the same memory as `valueBytes`.
    public let values: UnsafeMutablePointer<UInt16>
    /// (kvHeads, capacity) rows of `rowBytes` bytes.
    public let keyBytes: UnsafeMutableRawPointer
    /// f16: the value tiles; q8_0: (kvHeads, capacity) rows of `rowBytes` bytes.
    public let valueBytes: UnsafeMutableRawPointer
    /// (kvHeads, capacity) absolute positions. Ascending while nothing has been evicted;
    /// after an eviction the older entries may be in any order, but every entry appended
    /// later has a higher position than all entries before it.
    public let positions: UnsafeMutablePointer<Int32>
    /// (kvHeads, capacity) policy scores.
    public let scores: UnsafeMutablePointer<Float>
    /// Floats of policy data kept beside each entry (e.g. an indexer key); 0 for none.
    public let sideDimension: Int
    /// (kvHeads, capacity, sideDimension) side vectors.
    public let side: UnsafeMutablePointer<Float>
    /// Entries held per head.
    public private(set) var counts: [Int]

    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int

    /// - Parameters:
    ///   - capacity: slots per head (rounded up to a multiple of 32).
    ///   - sideDimension: floats of policy data per entry.
    ///   - entryType: how keys and values are stored (q8_0 needs a head dimension divisible by 32).
    public init(kvHeads: Int, headDimension: Int, capacity: Int, sideDimension: Int = 0, entryType: KVEntryType = .f16) {
        precondition(entryType.supports(headDimension: headDimension), "\(entryType) KV entries need a head dimension divisible by 32, got \(headDimension)")
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.capacity = max(32, (capacity + 31) / 32 * 32)
        self.sideDimension = sideDimension
        self.entryType = entryType
        rowBytes = entryType.rowBytes(headDimension: headDimension)
        let keyBytes = (kvHeads * self.capacity * rowBytes + 63) / 64 * 64
        let positionBytes = (kvHeads * self.capacity * 4 + 63) / 64 * 64
        let sideBytes = (kvHeads * self.capacity * max(sideDimension, 1) * 4 + 63) / 64 * 64
        mappingBytes = keyBytes * 2 + positionBytes * 2 + sideBytes
        guard let p = mmap(nil, mappingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else {
            // Out of address space is not recoverable here; the sizes come from validated configurations.
            preconditionFailure("cannot reserve \(mappingBytes) bytes for the KV cache")
        }
        mapping = p
        self.keyBytes = p
        valueBytes = p + keyBytes
        // The f16 views of the same memory (raw rows for q8_0 are read through `keyBytes`).
        keys = p.bindMemory(to: UInt16.self, capacity: keyBytes / 2)
        values = (p + keyBytes).bindMemory(to: UInt16.self, capacity: keyBytes / 2)
        positions = (p + 2 * keyBytes).bindMemory(to: Int32.self, capacity: kvHeads * self.capacity)
        scores = (p + 2 * keyBytes + positionBytes).bindMemory(to: Float.self, capacity: kvHeads * self.capacity)
        side = (p + 2 * keyBytes + 2 * positionBytes).bindMemory(to: Float.self, capacity: kvHeads * self.capacity * max(sideDimension, 1))
        counts = Array(repeating: 0, count: kvHeads)
    }

    deinit { munmap(mapping, mappingBytes) }

    /// Bytes one entry of one head takes: its key and value in `entryType`.
    public var bytesPerEntry: Int { entryType.bytesPerEntry(headDimension: headDimension) }

    /// Bytes one entry of one head of `headDimension` takes in `entryType` (a key and a value).
    public static func bytesPerEntry(headDimension: Int, entryType: KVEntryType = .f16) -> Int {
        entryType.bytesPerEntry(headDimension: headDimension)
    }

    /// Bytes of policy data per entry (position, score, side vector).
    public var policyBytesPerEntry: Int { 8 + sideDimension * 4 }

    /// Bytes of the entries held now (all heads).
    public var bytes: Int { counts.reduce(0, +) * bytesPerEntry }

    @inlinable public func keyRow(head: Int, slot: Int) -> UnsafeMutablePointer<UInt16> {
        keys + (head * capacity + slot) * headDimension
    }

    /// The value tile holding `slot`: (headDimension, 8) f16; the slot is lane `slot % 8`.
    @inlinable public func valueTile(head: Int, slot: Int) -> UnsafeMutablePointer<UInt16> {
        values + (head * capacity + slot / 8 * 8) * headDimension
    }

    /// q8_0: the key row of a slot (`rowBytes` bytes of Q8_0 blocks).
    @inlinable public func quantizedKeyRow(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        keyBytes + (head * capacity + slot) * rowBytes
    }

    /// q8_0: the value row of a slot (`rowBytes` bytes of Q8_0 blocks).
    @inlinable public func quantizedValueRow(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        valueBytes + (head * capacity + slot) * rowBytes
    }

    @inlinable public func positions(head: Int) -> UnsafeMutablePointer<Int32> { positions + head * capacity }

    @inlinable public func scores(head: Int) -> UnsafeMutablePointer<Float> { scores + head * capacity }

    /// The side vector of a slot (`sideDimension` floats).
    @inlinable public func side(head: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        side + (head * capacity + slot) * sideDimension
    }

    /// Appends one entry to `head` (converting to the entry type). The position must not be lower than
    /// the last one held.
    public func append(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let slot = counts[head]
        precondition(slot < capacity, "KV storage capacity \(capacity) exceeded")
        write(head: head, slot: slot, key: key, value: value, position: position)
        counts[head] = slot + 1
    }

    /// Appends a block: token `t`, head `h` from `(t * kvHeads + h) * headDimension`.
    public func append(_ batch: AppendBatch, kvHeads heads: Int) {
        let d = headDimension
        for t in 0..<batch.tokens {
            for h in 0..<heads {
                let src = (t * heads + h) * d
                append(head: h, key: batch.keys + src, value: batch.values + src, position: batch.positions[t])
            }
        }
    }

    /// Writes an entry into a slot.
    public func write(head: Int, slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let d = headDimension
        switch entryType {
        case .f16:
            Half.convert(key, to: keyRow(head: head, slot: slot), count: d)
            let tile = valueTile(head: head, slot: slot), lane = slot & 7
            for i in 0..<d { tile[i * 8 + lane] = Half.bits(value[i]) }
        case .q8_0:
            KVQ8_0.quantize(key, count: d, into: quantizedKeyRow(head: head, slot: slot))
            KVQ8_0.quantize(value, count: d, into: quantizedValueRow(head: head, slot: slot))
        }
        positions(head: head)[slot] = position
    }

    /// Reads an entry back as floats, as stored (for evicted-entry receivers and tests).
    public func read(head: Int, slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        let d = headDimension
        switch entryType {
        case .f16:
            Half.convert(UnsafePointer(keyRow(head: head, slot: slot)), to: key, count: d)
            let tile = valueTile(head: head, slot: slot), lane = slot & 7
            for i in 0..<d { value[i] = Half.toFloat(tile[i * 8 + lane]) }
        case .q8_0:
            KVQ8_0.dequantize(quantizedKeyRow(head: head, slot: slot), count: d, into: key)
            KVQ8_0.dequantize(quantizedValueRow(head: head, slot: slot), count: d, into: value)
        }
    }

    /// Moves slot `from` to slot `to` of the same head, with its position, score and side vector.
    public func move(head: Int, from: Int, to: Int) {
        let d = headDimension
        switch entryType {
        case .f16:
            keyRow(head: head, slot: to).update(from: keyRow(head: head, slot: from), count: d)
            let src = valueTile(head: head, slot: from), dst = valueTile(head: head, slot: to)
            let a = from & 7, b = to & 7
            for i in 0..<d { dst[i * 8 + b] = src[i * 8 + a] }
        case .q8_0:
            quantizedKeyRow(head: head, slot: to).copyMemory(from: quantizedKeyRow(head: head, slot: from), byteCount: rowBytes)
            quantizedValueRow(head: head, slot: to).copyMemory(from: quantizedValueRow(head: head, slot: from), byteCount: rowBytes)
        }
        positions(head: head)[to] = positions(head: head)[from]
        scores(head: head)[to] = scores(head: head)[from]
        if sideDimension > 0 { side(head: head, slot: to).update(from: side(head: head, slot: from), count: sideDimension) }
    }

    /// Removes the given slots of a head (sorted ascending, distinct). One slot is filled with
    /// the last entry (O(1), for evicting while decoding); several are removed keeping the
    /// other entries in order (one pass), so a cache's slot order does not depend on how its
    /// evictions were split, and entries in position order stay in position order.
    public func remove(head: Int, sortedSlots: UnsafeBufferPointer<Int>) {
        var count = counts[head]
        if sortedSlots.count == 1 {
            count -= 1
            if sortedSlots[0] != count { move(head: head, from: count, to: sortedSlots[0]) }
        } else {
            var next = 0, write = sortedSlots.first ?? count
            for read in write..<count {
                if next < sortedSlots.count && sortedSlots[next] == read { next += 1; continue }
                if read != write { move(head: head, from: read, to: write) }
                write += 1
            }
            count = write
        }
        truncate(head: head, to: count)
    }

    /// Sets the number of entries of a head (after compaction), zeroing the f16 values of the
    /// slots given up so that the kernel's lanes beyond the count hold finite numbers (the
    /// q8_0 kernel reads no slot beyond the count).
    public func truncate(head: Int, to count: Int) {
        let old = counts[head]
        precondition(count <= old)
        for slot in count..<old where entryType == .f16 {
            let tile = valueTile(head: head, slot: slot), lane = slot & 7
            for i in 0..<headDimension { tile[i * 8 + lane] = 0 }
        }
        counts[head] = count
    }

    /// Forgets every entry.
    public func removeAll() {
        for h in 0..<kvHeads { truncate(head: h, to: 0) }
    }
}

// MARK: - Snapshot

/// A copy of the entries a `KVStorage` held at one moment (keys, values, positions, scores,
/// side vectors), so that a cache that evicts while appending can still be rolled back.
public struct KVSnapshot: Sendable {
    let counts: [Int]
    /// The key rows' bytes.
    let keys: [[UInt8]]
    /// f16: whole value tiles (8 slots each) covering the entries; q8_0: the value rows' bytes.
    let values: [[UInt8]]
    let positions: [[Int32]]
    let scores: [[Float]]
    let side: [[Float]]
}

extension KVStorage {
    /// Copies the entries held now (O(entries)).
    public func snapshot() -> KVSnapshot {
        func copy<T>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> [T] { Array(UnsafeBufferPointer(start: p, count: n)) }
        func bytes(_ p: UnsafeMutableRawPointer, _ n: Int) -> [UInt8] { Array(UnsafeRawBufferPointer(start: p, count: n)) }
        return KVSnapshot(
            counts: counts,
            keys: (0..<kvHeads).map { bytes(keyRowBytes(head: $0), counts[$0] * rowBytes) },
            values: (0..<kvHeads).map { bytes(valueRowBytes(head: $0), valueBytesHeld(count: counts[$0])) },
            positions: (0..<kvHeads).map { copy(positions(head: $0), counts[$0]) },
            scores: (0..<kvHeads).map { copy(scores(head: $0), counts[$0]) },
            side: (0..<kvHeads).map { sideDimension > 0 ? copy(side(head: $0, slot: 0), counts[$0] * sideDimension) : [] })
    }

    /// Puts back the entries of `snapshot` (taken from this storage), dropping the current ones.
    public func restore(_ snapshot: KVSnapshot) {
        func put<T>(_ source: [T], _ destination: UnsafeMutablePointer<T>) {
            source.withUnsafeBufferPointer { if let b = $0.baseAddress { destination.update(from: b, count: $0.count) } }
        }
        func putBytes(_ source: [UInt8], _ destination: UnsafeMutableRawPointer) {
            source.withUnsafeBytes { if let b = $0.baseAddress { destination.copyMemory(from: b, byteCount: $0.count) } }
        }
        removeAll()
        for h in 0..<kvHeads {
            putBytes(snapshot.keys[h], keyRowBytes(head: h))
            putBytes(snapshot.values[h], valueRowBytes(head: h))
            put(snapshot.positions[h], positions(head: h))
            put(snapshot.scores[h], scores(head: h))
            if sideDimension > 0 { put(snapshot.side[h], side(head: h, slot: 0)) }
            counts[h] = snapshot.counts[h]
        }
    }

    /// The first byte of a head's keys.
    private func keyRowBytes(head: Int) -> UnsafeMutableRawPointer { keyBytes + head * capacity * rowBytes }

    /// The first byte of a head's values (f16 tiles hold 8 slots of `rowBytes` each, so both
    /// layouts give a head `capacity * rowBytes` bytes).
    private func valueRowBytes(head: Int) -> UnsafeMutableRawPointer { valueBytes + head * capacity * rowBytes }

    /// Bytes of values that cover `count` entries: whole f16 tiles, or q8_0 rows.
    private func valueBytesHeld(count: Int) -> Int {
        entryType == .f16 ? (count + 7) / 8 * 8 * rowBytes : count * rowBytes
    }
}
