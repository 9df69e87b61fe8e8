// IndexMem — kernel tests. Apache-2.0.
//
// Rotary embeddings against a scalar reference: angles built as ggml's rope cache builds
// them (theta = p, multiplied by base^(-2/n) once per pair, in f32), rotations in double.

import Foundation
import Testing
import IndexMemKernels

func referenceRoPE(_ x: [Float], style: RoPEStyle, heads: Int, headDimension: Int, dimensions n: Int,
                   base: Float, freqScale: Float, factors: [Float]?, position: Int32) -> [Float] {
    let thetaScale = powf(base, -2.0 / Float(n))
    var angles = [Double]()
    var theta = Float(position)
    for i in 0..<(n / 2) {
        angles.append(Double(freqScale * (theta / (factors?[i] ?? 1))))
        theta *= thetaScale
    }
    var y = x
    for h in 0..<heads {
        let o = h * headDimension
        for i in 0..<(n / 2) {
            let (p, q) = style == .adjacentPairs ? (o + 2 * i, o + 2 * i + 1) : (o + i, o + i + n / 2)
            let a = Double(x[p]), b = Double(x[q]), c = cos(angles[i]), s = sin(angles[i])
            y[p] = Float(a * c - b * s)
            y[q] = Float(a * s + b * c)
        }
    }
    return y
}

@Suite("RoPE")
struct RoPETests {
    @Test("both styles match the reference", arguments: [RoPEStyle.adjacentPairs, .halves])
    func styles(style: RoPEStyle) {
        var rng = SeededRNG(seed: style == .halves ? 2 : 1)
        let configs: [(heads: Int, headDimension: Int, dims: Int, base: Float, scale: Float, factors: Bool)] = [
            (3, 64, 64, 10_000, 1, false),
            (2, 128, 128, 1_000_000, 1, false),
            (2, 64, 32, 10_000, 1, false),      // partial rotation: the rest passes through
            (1, 64, 64, 500_000, 0.25, true),   // linear scaling and per-pair frequency factors
        ]
        for c in configs {
            let factors: [Float]? = c.factors ? (0..<(c.dims / 2)).map { _ in rng.float(1...8) } : nil
            let rope = RoPE(style: style, dimensions: c.dims, base: c.base, freqScale: c.scale, frequencyFactors: factors)
            for position: Int32 in [0, 1, 7, 300, 4095, 31000] {
                let x = (0..<(c.heads * c.headDimension)).map { _ in rng.float(-3...3) }
                var y = x
                var scratch = [Float](repeating: 0, count: c.dims)
                y.withUnsafeMutableBufferPointer { yp in
                    scratch.withUnsafeMutableBufferPointer {
                        rope.apply(yp.baseAddress!, heads: c.heads, headDimension: c.headDimension, position: position, cosSin: $0.baseAddress!)
                    }
                }
                let ref = referenceRoPE(x, style: style, heads: c.heads, headDimension: c.headDimension, dimensions: c.dims,
                                        base: c.base, freqScale: c.scale, factors: factors, position: position)
                for i in 0..<y.count {
                    #expect(abs(y[i] - ref[i]) <= 2e-6 * 3 * 4, "\(style) dims \(c.dims) position \(position) [\(i)]: \(y[i]) vs \(ref[i])")
                }
                if position == 0 { #expect(y == x) }
                for h in 0..<c.heads {
                    for i in c.dims..<c.headDimension { #expect(y[h * c.headDimension + i] == x[h * c.headDimension + i]) }
                }
            }
        }
    }

    @Test("adjacent pairs and halves rotate different pairs")
    func pairing() {
        // A unit vector in dimension 0 rotates into dimension 1 (adjacent) or n/2 (halves).
        var x = [Float](repeating: 0, count: 8)
        x[0] = 1
        var scratch = [Float](repeating: 0, count: 8)
        for (style, partner) in [(RoPEStyle.adjacentPairs, 1), (.halves, 4)] {
            var y = x
            y.withUnsafeMutableBufferPointer { yp in
                scratch.withUnsafeMutableBufferPointer {
                    RoPE(style: style, dimensions: 8, base: 10_000).apply(yp.baseAddress!, heads: 1, headDimension: 8, position: 1, cosSin: $0.baseAddress!)
                }
            }
            #expect(abs(y[0] - cosf(1)) < 1e-6)
            #expect(abs(y[partner] - sinf(1)) < 1e-6)
        }
    }
}
