// IndexMem — test support. Apache-2.0.

// MARK: - Seeded random numbers

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator whose sequence is the
/// same on every platform. For reproducible tests; not for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (n > 0), without modulo bias worth caring about in tests.
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next() % UInt64(n))
    }

    /// A uniform float in `[lo, hi)`.
    public mutating func float(_ lo: Float = 0, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) * (1 / Float(1 << 24))
    }

    /// `n` random bytes.
    public mutating func bytes(_ n: Int) -> [UInt8] {
        (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    /// `n` floats uniform in `[lo, hi)`.
    public mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in float(lo, hi) }
    }
}
