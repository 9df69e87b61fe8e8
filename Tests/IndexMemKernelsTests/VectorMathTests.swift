// IndexMem — kernel tests. Apache-2.0.

import Foundation
import Testing
import IndexMemKernels

func withPointers<R>(_ a: [Float], _ b: [Float], _ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> R) -> R {
    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in body(ap.baseAddress!, bp.baseAddress!) } }
}

@Suite("Vector math")
struct VectorMathTests {
    static let counts = [0, 1, 7, 8, 9, 16, 31, 32, 33, 100, 1000, 2051]

    @Test("dot matches a double sum")
    func dot() {
        var rng = SeededRNG(seed: 11)
        for n in Self.counts {
            let a = (0..<n).map { _ in rng.float(-2...2) }, b = (0..<n).map { _ in rng.float(-2...2) }
            let got = withPointers(a, b) { VectorMath.dot($0, $1, count: n) }
            let ref = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let mag = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            #expect(abs(Double(got) - ref) <= 2e-6 * mag + 1e-12, "n \(n)")
            #expect(withPointers(a, b) { F32Row.dot(UnsafeRawPointer($0), UnsafeRawPointer($1), count: n) } == got)
        }
    }

    @Test("axpy, add and scale")
    func elementwise() {
        var rng = SeededRNG(seed: 12)
        for n in Self.counts {
            let x = (0..<n).map { _ in rng.float(-2...2) }, y0 = (0..<n).map { _ in rng.float(-2...2) }
            var y = y0
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { VectorMath.axpy(0.75, xp.baseAddress!, $0.baseAddress!, count: n) } }
            for i in 0..<n { #expect(abs(Double(y[i]) - (Double(y0[i]) + 0.75 * Double(x[i]))) <= 1e-6 * 4) }
            y = y0
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { VectorMath.add(xp.baseAddress!, into: $0.baseAddress!, count: n) } }
            for i in 0..<n { #expect(y[i] == y0[i] + x[i]) }
            y = y0
            y.withUnsafeMutableBufferPointer { VectorMath.scale($0.baseAddress!, by: -1.5, count: n) }
            for i in 0..<n { #expect(y[i] == y0[i] * -1.5) }
        }
    }

    @Test("rmsNorm matches a double reference, with and without weights")
    func rmsNorm() {
        var rng = SeededRNG(seed: 13)
        for n in [1, 7, 64, 576, 1000] {
            let x = (0..<n).map { _ in rng.float(-5...5) }, w = (0..<n).map { _ in rng.float(-2...2) }
            let eps: Float = 1e-6
            let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
            let scale = 1 / (ms + Double(eps)).squareRoot()
            for weighted in [false, true] {
                var out = [Float](repeating: 0, count: n)
                withPointers(x, w) { xp, wp in
                    out.withUnsafeMutableBufferPointer { VectorMath.rmsNorm(xp, weight: weighted ? wp : nil, eps: eps, out: $0.baseAddress!, count: n) }
                }
                for i in 0..<n {
                    let ref = Double(x[i]) * scale * (weighted ? Double(w[i]) : 1)
                    #expect(abs(Double(out[i]) - ref) <= 1e-6 * max(1, abs(ref)), "n \(n) [\(i)]")
                }
            }
        }
        // All zeros stay zeros (eps keeps the scale finite).
        let z = [Float](repeating: 0, count: 8)
        var out = [Float](repeating: 1, count: 8)
        z.withUnsafeBufferPointer { zp in out.withUnsafeMutableBufferPointer { VectorMath.rmsNorm(zp.baseAddress!, weight: nil, eps: 1e-5, out: $0.baseAddress!, count: 8) } }
        #expect(out == z)
    }

    @Test("softmax matches a double reference and is stable for large logits")
    func softmax() {
        var rng = SeededRNG(seed: 14)
        for n in [1, 2, 10, 257] {
            for shift: Float in [0, 1000, -1000] {
                var x = (0..<n).map { _ in rng.float(-10...10) + shift }
                if n > 2 { x[1] = -.infinity }
                let m = Double(x.max()!)
                let e = x.map { exp(Double($0) - m) }
                let s = e.reduce(0, +)
                var y = x
                let got = y.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, count: n) }
                #expect(abs(Double(got) - s) <= 1e-5 * s)
                for i in 0..<n { #expect(abs(Double(y[i]) - e[i] / s) <= 1e-6, "n \(n) [\(i)]") }
                if n > 2 { #expect(y[1] == 0) }
                #expect(abs(y.reduce(0, +) - 1) <= 1e-5)
            }
        }
    }

    @Test("swiglu is silu(gate) * up")
    func swiglu() {
        var rng = SeededRNG(seed: 15)
        let n = 100
        var g = (0..<n).map { _ in rng.float(-20...20) }
        g[0] = 0; g[1] = -90; g[2] = 90
        let u = (0..<n).map { _ in rng.float(-3...3) }
        var out = g
        u.withUnsafeBufferPointer { up in out.withUnsafeMutableBufferPointer { VectorMath.swiglu($0.baseAddress!, up.baseAddress!, count: n) } }
        for i in 0..<n {
            let x = Double(g[i])
            let ref = x / (1 + exp(-x)) * Double(u[i])
            #expect(abs(Double(out[i]) - ref) <= 1e-6 * max(1, abs(ref)), "[\(i)] \(out[i]) vs \(ref)")
        }
    }

    @Test("argmax takes the first of equal maxima")
    func argmax() {
        let cases: [([Float], Int)] = [
            ([3], 0), ([1, 5, 2], 1), ([1, 5, 5, 2], 1), ([-.infinity, -.infinity], 0),
            ([-3, -1, -2], 1), ([0, .infinity, 7], 1), ([2, 1, 2], 0),
        ]
        for (x, expected) in cases {
            #expect(x.withUnsafeBufferPointer { VectorMath.argmax($0.baseAddress!, count: x.count) } == expected, "\(x)")
        }
        var rng = SeededRNG(seed: 16)
        let big = (0..<5000).map { _ in rng.float(-1...1) }
        #expect(big.withUnsafeBufferPointer { VectorMath.argmax($0.baseAddress!, count: big.count) } == big.indices.max { big[$0] < big[$1] }!)
    }
}
