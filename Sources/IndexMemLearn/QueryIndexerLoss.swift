// IndexMem — learning. Apache-2.0.
//
// The query-aware indexer's loss for one block and its hand-written gradient (checked against
// finite differences in the tests). For block b with hidden states x_t (t in a subset Q of
// the block) and candidate entries j with hidden states x_j:
//
//     k_j = W_k x_j,   q_th = W_q,h x_t,   w_th = W_w,h x_t
//     s_j = (1 / (|Q| tau)) sum_t sum_h w_th ReLU(q_th . k_j)
//     loss = KL(p || softmax(s)) = sum_j p_j (log p_j - log softmax(s)_j)
//
// where p is the teacher: the attention later blocks pay the entries, normalised.

import Foundation
import IndexMemKernels

// MARK: - Parameters of one layer

package struct QueryIndexerWeights: Equatable {
    package let heads: Int
    package let keyDimension: Int
    package let hidden: Int
    /// Every parameter in one vector, the gradient's layout, so that Adam updates it in place:
    /// query projection (heads * keyDimension, hidden), key projection (keyDimension, hidden),
    /// head weights (heads, hidden).
    package var flat: [Float]

    package init(heads: Int, keyDimension: Int, hidden: Int, seed: UInt64) {
        self.heads = heads
        self.keyDimension = keyDimension
        self.hidden = hidden
        var rng = SplitMix64(seed: seed)
        let scale = 1 / Float(hidden).squareRoot()
        flat = (0..<((heads * keyDimension + keyDimension + heads) * hidden)).map { _ in rng.float(-scale, scale) }
    }

    package var count: Int { flat.count }
    /// Where each projection starts in `flat`.
    var keyOffset: Int { heads * keyDimension * hidden }
    var headWeightsOffset: Int { keyOffset + keyDimension * hidden }

    /// The projections, as the adapter file stores them.
    package var query: [Float] { Array(flat[0..<keyOffset]) }
    package var key: [Float] { Array(flat[keyOffset..<headWeightsOffset]) }
    package var headWeights: [Float] { Array(flat[headWeightsOffset...]) }
}

/// One block's training example: row-major hidden states of its (sampled) queries and of the
/// candidate entries, and the teacher distribution over the entries.
package struct IndexerExample {
    package var queries: [Float]      // (nq, hidden)
    package var entries: [Float]      // (ne, hidden)
    package var teacher: [Float]      // (ne), sums to 1
    package var queryCount: Int
    package var entryCount: Int

    package init(queries: [Float], entries: [Float], teacher: [Float], queryCount: Int, entryCount: Int) {
        self.queries = queries
        self.entries = entries
        self.teacher = teacher
        self.queryCount = queryCount
        self.entryCount = entryCount
    }
}

package enum QueryIndexerLoss {
    /// Loss and its gradient (the layout of `QueryIndexerWeights.flat`) for one example.
    package static func lossAndGradient(_ w: QueryIndexerWeights, _ e: IndexerExample, temperature: Float = 1) -> (Float, [Float]) {
        let H = w.heads, r = w.keyDimension, d = w.hidden, nq = e.queryCount, ne = e.entryCount
        var keys = [Float](repeating: 0, count: ne * r)
        var qs = [Float](repeating: 0, count: nq * H * r)
        var ws = [Float](repeating: 0, count: nq * H)
        w.flat.withUnsafeBufferPointer { parameters in
            let wq = parameters.baseAddress!, wk = wq + w.keyOffset, ww = wq + w.headWeightsOffset
            e.entries.withUnsafeBufferPointer { x in
                for j in 0..<ne { for a in 0..<r { keys[j * r + a] = VectorMath.dot(wk + a * d, x.baseAddress! + j * d, count: d) } }
            }
            e.queries.withUnsafeBufferPointer { x in
                for t in 0..<nq {
                    let xt = x.baseAddress! + t * d
                    for h in 0..<H {
                        ws[t * H + h] = VectorMath.dot(ww + h * d, xt, count: d)
                        for a in 0..<r { qs[(t * H + h) * r + a] = VectorMath.dot(wq + (h * r + a) * d, xt, count: d) }
                    }
                }
            }
        }
        // Scores: dots (nq*H, ne) kept for the backward pass.
        let c = 1 / (Float(nq) * temperature)
        var dots = [Float](repeating: 0, count: nq * H * ne)
        var s = [Float](repeating: 0, count: ne)
        qs.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { k in
                for i in 0..<(nq * H) {
                    let qi = q.baseAddress! + i * r
                    for j in 0..<ne {
                        let v = VectorMath.dot(qi, k.baseAddress! + j * r, count: r)
                        dots[i * ne + j] = v
                        if v > 0 { s[j] += ws[i] * v }
                    }
                }
            }
        }
        for j in 0..<ne { s[j] *= c }
        // Softmax and KL; ds = dloss/ds_j times the score scale.
        var ds = s
        let loss = ds.withUnsafeMutableBufferPointer { d in
            e.teacher.withUnsafeBufferPointer { t in ListwiseStaticLoss.softmaxKL(scores: d.baseAddress!, teacher: t.baseAddress!, count: ne) }
        }
        for j in 0..<ne { ds[j] *= c }
        // Backward.
        var dq = [Float](repeating: 0, count: nq * H * r)
        var dw = [Float](repeating: 0, count: nq * H)
        var dk = [Float](repeating: 0, count: ne * r)
        for i in 0..<(nq * H) {
            let wi = ws[i]
            var dwi: Float = 0
            for j in 0..<ne {
                let v = dots[i * ne + j]
                guard v > 0 else { continue }
                dwi += ds[j] * v
                let gq = ds[j] * wi
                for a in 0..<r {
                    dq[i * r + a] += gq * keys[j * r + a]
                    dk[j * r + a] += gq * qs[i * r + a]
                }
            }
            dw[i] = dwi
        }
        var grad = [Float](repeating: 0, count: w.count)
        let qOffset = 0, kOffset = w.keyOffset, wOffset = w.headWeightsOffset
        grad.withUnsafeMutableBufferPointer { g in
            e.queries.withUnsafeBufferPointer { x in
                for t in 0..<nq {
                    let xt = x.baseAddress! + t * d
                    for h in 0..<H {
                        VectorMath.axpy(dw[t * H + h], xt, g.baseAddress! + wOffset + h * d, count: d)
                        for a in 0..<r {
                            VectorMath.axpy(dq[(t * H + h) * r + a], xt, g.baseAddress! + qOffset + (h * r + a) * d, count: d)
                        }
                    }
                }
            }
            e.entries.withUnsafeBufferPointer { x in
                for j in 0..<ne {
                    for a in 0..<r { VectorMath.axpy(dk[j * r + a], x.baseAddress! + j * d, g.baseAddress! + kOffset + a * d, count: d) }
                }
            }
        }
        return (loss, grad)
    }
}

// MARK: - Adam with a warm-up / stable / decay schedule

package struct AdamState: Codable, Equatable {
    var first: [Float]
    var second: [Float]
    var step = 0

    package init(count: Int) {
        first = [Float](repeating: 0, count: count)
        second = [Float](repeating: 0, count: count)
    }

    /// Learning rate at `step` of `total`: linear warm-up over 5 %, constant, linear decay over the last 20 %.
    package static func rate(peak: Float, step: Int, total: Int) -> Float {
        let warm = max(1, total / 20), decayFrom = total - total / 5
        if step < warm { return peak * Float(step + 1) / Float(warm) }
        if step >= decayFrom { return peak * max(0.05, Float(total - step) / Float(max(1, total - decayFrom))) }
        return peak
    }

    package mutating func update(_ parameters: inout [Float], gradient: [Float], rate: Float,
                         beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        step += 1
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        for i in parameters.indices {
            let g = gradient[i]
            first[i] = beta1 * first[i] + (1 - beta1) * g
            second[i] = beta2 * second[i] + (1 - beta2) * g * g
            parameters[i] -= rate * (first[i] / c1) / ((second[i] / c2).squareRoot() + epsilon)
        }
    }
}
