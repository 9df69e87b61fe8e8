// IndexMem — kernels. Apache-2.0.

import Foundation

// MARK: - Rotary position embedding

/// How a head's dimensions are paired for rotation.
public enum RoPEStyle: Sendable, Equatable {
    /// Pairs (x[2i], x[2i+1]): llama.cpp's `LLAMA_ROPE_TYPE_NORM` (llama, mistral).
    case adjacentPairs
    /// Pairs (x[i], x[i + n/2]): `LLAMA_ROPE_TYPE_NEOX` (qwen2, qwen3, gemma3).
    case halves
}

/// Rotates heads in place at absolute positions, computing angles as ggml does
/// (`theta_i = p * base^(-2i/n)` by repeated multiplication, then `freqScale`).
public struct RoPE: Sendable {
    public let style: RoPEStyle
    /// Dimensions rotated per head (the rest pass through).
    public let dimensions: Int
    public let base: Float
    /// Linear position scaling (1 = none).
    public let freqScale: Float
    /// Optional per-pair frequency divisors (Llama 3 `rope_freqs.weight`).
    public let frequencyFactors: [Float]?

    public init(style: RoPEStyle, dimensions: Int, base: Float, freqScale: Float = 1, frequencyFactors: [Float]? = nil) {
        self.style = style
        self.dimensions = dimensions
        self.base = base
        self.freqScale = freqScale
        self.frequencyFactors = frequencyFactors
    }

    /// Rotates `heads` heads of `headDimension` floats stored contiguously at `x`.
    /// - Parameter cosSin: scratch of `dimensions` floats.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDimension: Int, position: Int32, cosSin: UnsafeMutablePointer<Float>) {
        let n = dimensions
        let thetaScale = powf(base, -2.0 / Float(n))
        var theta = Float(position)
        for i in 0..<(n / 2) {
            let ff = frequencyFactors.map { $0[i] } ?? 1
            let t = freqScale * (theta / ff)  // ggml's order: theta / ff, then freq_scale
            cosSin[2 * i] = cosf(t)
            cosSin[2 * i + 1] = sinf(t)
            theta *= thetaScale
        }
        for h in 0..<heads {
            let v = x + h * headDimension
            switch style {
            case .adjacentPairs:
                for i in 0..<(n / 2) {
                    let c = cosSin[2 * i], s = cosSin[2 * i + 1]
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = rotatedFirst(a, b, c, s)
                    v[2 * i + 1] = rotatedSecond(a, b, c, s)
                }
            case .halves:
                let half = n / 2
                for i in 0..<half {
                    let c = cosSin[2 * i], s = cosSin[2 * i + 1]
                    let a = v[i], b = v[i + half]
                    v[i] = rotatedFirst(a, b, c, s)
                    v[i + half] = rotatedSecond(a, b, c, s)
                }
            }
        }
    }

    /// `a cos - b sin` as ggml's compiled `rotate_pairs` computes it: `b sin` rounded, then one
    /// fused multiply-add (GCC contracts the expression).
    @inline(__always)
    func rotatedFirst(_ a: Float, _ b: Float, _ c: Float, _ s: Float) -> Float { (-(b * s)).addingProduct(a, c) }

    /// `a sin + b cos`, likewise: `b cos` rounded, then `a sin` fused into it.
    @inline(__always)
    func rotatedSecond(_ a: Float, _ b: Float, _ c: Float, _ s: Float) -> Float { (b * c).addingProduct(a, s) }
}
