// IndexMem — test support. Apache-2.0.

@_exported import struct IndexMemKernels.SplitMix64

// MARK: - Seeded test data

extension SplitMix64 {
    /// `n` random bytes.
    public mutating func bytes(_ n: Int) -> [UInt8] {
        (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    /// `n` floats uniform in `[lo, hi)`.
    public mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in float(lo, hi) }
    }
}
