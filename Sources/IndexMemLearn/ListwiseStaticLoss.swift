// IndexMem — learning. Apache-2.0.
//
// The write-time indexer fitted for ranking instead of regression. Ridge regression on the
// log of the attention an entry receives spends its capacity on the bulk of entries no later
// query reads; eviction only needs the top of the ranking right. So, per KV head, the linear
// score s_j = w . x_j of a sequence's candidate entries is trained like the query-aware
// indexer (ListNet):
//
//     loss = KL(p || softmax(s)) = sum_j p_j (log p_j - log softmax(s)_j),
//     dloss/dw = sum_j (softmax(s)_j - p_j) x_j,
//
// with p the teacher's attention on the entries, normalised. x_j = [normalised layer input,
// keys before RoPE, 1], the static indexer's features, so inference is unchanged.

import Foundation
import IndexMemKernels

package enum ListwiseStaticLoss {
    /// Loss and gradient of one head's weights `w` (features) over `rows` entries whose
    /// features are `x` (rows, features, row-major) and whose teacher is `teacher` (sums to 1).
    package static func lossAndGradient(weights w: UnsafePointer<Float>, features x: UnsafePointer<Float>, rows: Int,
                                        featureCount p: Int, teacher: UnsafePointer<Float>,
                                        gradient: UnsafeMutablePointer<Float>, scratch s: UnsafeMutablePointer<Float>) -> Float {
        for j in 0..<rows { s[j] = VectorMath.dot(w, x + j * p, count: p) }
        let loss = softmaxKL(scores: s, teacher: teacher, count: rows)
        gradient.update(repeating: 0, count: p)
        for j in 0..<rows where s[j] != 0 { VectorMath.axpy(s[j], x + j * p, gradient, count: p) }
        return loss
    }

    /// `KL(teacher || softmax(scores))`; overwrites the scores with its gradient with respect
    /// to them, `softmax(scores) - teacher`. Shared by both indexers' losses.
    package static func softmaxKL(scores s: UnsafeMutablePointer<Float>, teacher: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for j in 0..<count { m = max(m, s[j]) }
        var z: Double = 0
        for j in 0..<count { z += Double(expf(s[j] - m)) }
        let logZ = Float(log(z)) + m
        var loss: Float = 0
        for j in 0..<count {
            let logSoft = s[j] - logZ
            let t = teacher[j]
            if t > 0 { loss += t * (logf(t) - logSoft) }
            s[j] = expf(logSoft) - t
        }
        return loss
    }
}
