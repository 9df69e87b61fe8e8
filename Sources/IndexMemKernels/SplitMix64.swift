// IndexMem — kernels. Apache-2.0.

// MARK: - Seeded randomness

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator whose sequence is
/// the same on every platform: reproducible samples, sampling, random policies and tests.
/// The project's only generator. Not for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (n > 0; the modulo bias is negligible for small n).
    @inlinable
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

    /// A uniform double in `[0, 1)` from the top 53 bits.
    @inlinable
    public mutating func unitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform float in `[lo, hi)` from the top 24 bits.
    @inlinable
    public mutating func float(_ lo: Float = 0, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) * (1 / Float(1 << 24))
    }
}
