// IndexMem — cache. Apache-2.0.
//
// How one key or value row is stored. f16 is llama.cpp's default KV type and ours; q8_0 is
// llama.cpp's `type_k = type_v = q8_0`: 34 bytes per 32 values instead of 64, so the same
// byte budget holds ~1.9x the entries, at a small cost in accuracy.

import IndexMemKernels

// MARK: - Entry type

/// The storage format of keys and values.
public enum KVEntryType: String, Sendable, Codable, CaseIterable {
    /// IEEE half precision (2 bytes per value).
    case f16
    /// ggml's Q8_0 blocks: an f16 scale and 32 int8 (34 bytes per 32 values).
    case q8_0

    /// Whether rows of `headDimension` values can be stored (Q8_0 needs whole blocks of 32).
    public func supports(headDimension d: Int) -> Bool {
        switch self {
        case .f16: d > 0
        case .q8_0: KVQ8_0.supports(count: d)
        }
    }

    /// Bytes of one key (or one value) row of `headDimension` values.
    public func rowBytes(headDimension d: Int) -> Int {
        switch self {
        case .f16: d * MemoryLayout<UInt16>.size
        case .q8_0: KVQ8_0.rowBytes(count: d)
        }
    }

    /// Bytes of one entry of one head: its key and its value.
    public func bytesPerEntry(headDimension d: Int) -> Int { 2 * rowBytes(headDimension: d) }
}
