// IndexMem — cache. Apache-2.0.
//
// Keys and values of one layer, per KV head, as f16 (llama.cpp's default KV type).
// Keys are rows (slot, headDimension). Values are kept in tiles of 8 slots transposed to
// (headDimension, 8), so the attention kernel can accumulate `sum_j p_j v_j` in eight lanes by
// slot index, as llama.cpp's non-flash attention does with its transposed V cache; appending
// still writes one small tile. Memory is reserved with an anonymous mapping: pages are zero
// and only become resident as slots fill.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IndexMemKernels

// MARK: - Storage

/// f16 keys and values of `kvHeads` heads, each with up to `capacity` slots.
public final class KVStorage: @unchecked Sendable {
    public let kvHeads: Int
    public let headDimension: Int
    /// Slots per head (a multiple of 8).
    public let capacity: Int
    /// (kvHeads, capacity, headDimension) f16 bits.
    public let keys: UnsafeMutablePointer<UInt16>
    /// (kvHeads, capacity / 8, headDimension, 8) f16 bits.
    public let values: UnsafeMutablePointer<UInt16>
    /// (kvHeads, capacity) absolute positions, ascending within a head.
    public let positions: UnsafeMutablePointer<Int32>
    /// Entries held per head.
    public private(set) var counts: [Int]

    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int

    /// - Parameter capacity: slots per head (rounded up to a multiple of 8).
    public init(kvHeads: Int, headDimension: Int, capacity: Int) {
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.capacity = max(8, (capacity + 7) / 8 * 8)
        let elements = kvHeads * self.capacity * headDimension
        let keyBytes = (elements * 2 + 63) / 64 * 64
        let positionBytes = (kvHeads * self.capacity * 4 + 63) / 64 * 64
        mappingBytes = keyBytes * 2 + positionBytes
        guard let p = mmap(nil, mappingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else {
            // Out of address space is not recoverable here; the sizes come from validated configurations.
            preconditionFailure("cannot reserve \(mappingBytes) bytes for the KV cache")
        }
        mapping = p
        keys = p.bindMemory(to: UInt16.self, capacity: elements)
        values = (p + keyBytes).bindMemory(to: UInt16.self, capacity: elements)
        positions = (p + 2 * keyBytes).bindMemory(to: Int32.self, capacity: kvHeads * self.capacity)
        counts = Array(repeating: 0, count: kvHeads)
    }

    deinit { munmap(mapping, mappingBytes) }

    /// Bytes one entry takes (key and value of one head).
    public var bytesPerEntry: Int { headDimension * 2 * 2 }

    /// Bytes of the entries held now (all heads).
    public var bytes: Int { counts.reduce(0, +) * bytesPerEntry }

    @inlinable public func keyRow(head: Int, slot: Int) -> UnsafeMutablePointer<UInt16> {
        keys + (head * capacity + slot) * headDimension
    }

    /// The value tile holding `slot`: (headDimension, 8) f16; the slot is lane `slot % 8`.
    @inlinable public func valueTile(head: Int, slot: Int) -> UnsafeMutablePointer<UInt16> {
        values + (head * capacity + slot / 8 * 8) * headDimension
    }

    @inlinable public func positions(head: Int) -> UnsafeMutablePointer<Int32> { positions + head * capacity }

    /// Appends one entry to `head` (converting to f16). The position must not be lower than
    /// the last one held.
    public func append(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let slot = counts[head]
        precondition(slot < capacity, "KV storage capacity \(capacity) exceeded")
        write(head: head, slot: slot, key: key, value: value, position: position)
        counts[head] = slot + 1
    }

    /// Writes an entry into a slot.
    public func write(head: Int, slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let d = headDimension
        Half.convert(key, to: keyRow(head: head, slot: slot), count: d)
        let tile = valueTile(head: head, slot: slot), lane = slot & 7
        for i in 0..<d { tile[i * 8 + lane] = Half.bits(value[i]) }
        positions(head: head)[slot] = position
    }

    /// Reads an entry back as floats (for evicted-entry receivers and tests).
    public func read(head: Int, slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        let d = headDimension
        Half.convert(UnsafePointer(keyRow(head: head, slot: slot)), to: key, count: d)
        let tile = valueTile(head: head, slot: slot), lane = slot & 7
        for i in 0..<d { value[i] = Half.toFloat(tile[i * 8 + lane]) }
    }

    /// Moves slot `from` to slot `to` of the same head (compaction after eviction).
    public func move(head: Int, from: Int, to: Int) {
        let d = headDimension
        keyRow(head: head, slot: to).update(from: keyRow(head: head, slot: from), count: d)
        let src = valueTile(head: head, slot: from), dst = valueTile(head: head, slot: to)
        let a = from & 7, b = to & 7
        for i in 0..<d { dst[i * 8 + b] = src[i * 8 + a] }
        let p = positions(head: head)
        p[to] = p[from]
    }

    /// Sets the number of entries of a head (after compaction), zeroing the values of the
    /// slots given up so that the kernel's lanes beyond the count hold finite numbers.
    public func truncate(head: Int, to count: Int) {
        let old = counts[head]
        precondition(count <= old)
        for slot in count..<old {
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
