// IndexMem — learning. Apache-2.0.
//
// The latent memory's readout, fitted per layer and KV head (`LatentMemory`, gated form):
//
//     o = o_kept + g (u + beta w),   u = mean(v_ev) - o_kept,   w = s Cov(v, k) q,
//     g = sigmoid(c0 + c1 x1 + c2 x2),   x1 = log n + s q.mu - log Z_kept,   x2 = spread,
//     loss = || r - g (u + beta w) ||^2,   r = o_full - o_kept.
//
// Expanded, one query's loss needs only eight numbers: x1, x2 and the inner products
// r.u, r.w, u.u, u.w, w.w, r.r. So the teacher pass keeps those per sampled query instead of
// vectors, and the fit is a few thousand flops per step.

import Foundation

/// One query's eviction residual, reduced to what the gate's loss needs.
package struct MemorySample: Equatable, Sendable {
    package var x1: Float, x2: Float
    package var ru: Float, rw: Float, uu: Float, uw: Float, ww: Float, rr: Float

    package init(x1: Float, x2: Float, ru: Float, rw: Float, uu: Float, uw: Float, ww: Float, rr: Float) {
        self.x1 = x1; self.x2 = x2; self.ru = ru; self.rw = rw; self.uu = uu; self.uw = uw; self.ww = ww; self.rr = rr
    }

    static let floats = 8
    var array: [Float] { [x1, x2, ru, rw, uu, uw, ww, rr] }
    init(_ a: ArraySlice<Float>) {
        let b = a.startIndex
        self.init(x1: a[b], x2: a[b + 1], ru: a[b + 2], rw: a[b + 3], uu: a[b + 4], uw: a[b + 5], ww: a[b + 6], rr: a[b + 7])
    }
}

package enum MemoryGateLoss {
    /// Parameters: c0, c1, c2, beta.
    package static let parameterCount = 4
    /// The closed form (the softmax readout): g = sigmoid(log Z_ev estimate - log Z_kept), beta = 1.
    package static let closedForm: [Double] = [0, 1, 1, 1]

    @inline(__always)
    static func gate(_ p: [Double], _ s: MemorySample) -> Double {
        let x = p[0] + p[1] * Double(s.x1) + p[2] * Double(s.x2)
        return 1 / (1 + exp(-min(max(x, -80), 80)))
    }

    /// Mean loss over `samples` and its gradient with respect to (c0, c1, c2, beta).
    package static func lossAndGradient(_ p: [Double], _ samples: [MemorySample]) -> (loss: Double, gradient: [Double]) {
        var loss = 0.0
        var gradient = [Double](repeating: 0, count: parameterCount)
        let beta = p[3]
        for s in samples {
            let g = gate(p, s)
            let ru = Double(s.ru), rw = Double(s.rw), uu = Double(s.uu), uw = Double(s.uw), ww = Double(s.ww)
            let re = ru + beta * rw, ee = uu + 2 * beta * uw + beta * beta * ww
            loss += Double(s.rr) - 2 * g * re + g * g * ee
            let dg = (-2 * re + 2 * g * ee) * g * (1 - g)
            gradient[0] += dg
            gradient[1] += dg * Double(s.x1)
            gradient[2] += dg * Double(s.x2)
            gradient[3] += -2 * g * rw + g * g * (2 * uw + 2 * beta * ww)
        }
        let n = Double(max(samples.count, 1))
        return (loss / n, gradient.map { $0 / n })
    }

    /// Mean loss of the readout switched off (g = 0): the eviction's own error, `mean r.r`.
    package static func baseline(_ samples: [MemorySample]) -> Double {
        samples.reduce(0.0) { $0 + Double($1.rr) } / Double(max(samples.count, 1))
    }

    /// Adam from the closed form, full batch, with a decaying rate. Returns the parameters.
    package static func fit(_ samples: [MemorySample], steps: Int = 300, rate: Double = 0.05) -> [Double] {
        var p = closedForm
        guard !samples.isEmpty else { return p }
        var m = [Double](repeating: 0, count: parameterCount), v = m
        var best = (loss: lossAndGradient(p, samples).loss, p: p)
        for step in 1...steps {
            let (loss, g) = lossAndGradient(p, samples)
            if loss < best.loss { best = (loss, p) }
            let lr = rate * (step > steps * 3 / 4 ? 0.2 : 1)
            for i in 0..<parameterCount {
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mh = m[i] / (1 - pow(0.9, Double(step))), vh = v[i] / (1 - pow(0.999, Double(step)))
                p[i] -= lr * mh / (vh.squareRoot() + 1e-12)
            }
        }
        let last = lossAndGradient(p, samples).loss
        return last < best.loss ? p : best.p
    }
}
