// IndexMem — learning. Apache-2.0.
//
// Eigenvectors of a small symmetric matrix (a KV head's key covariance, at most a few hundred
// rows) by cyclic Jacobi rotations: simple, accurate, and fast enough at this size.

import Foundation

package enum SymmetricEigen {
    /// Eigenvalues (descending) and eigenvectors (rows, unit length) of the symmetric `n` x `n`
    /// matrix `a` (row-major).
    package static func decompose(_ a: [Double], n: Int, sweeps: Int = 60) -> (values: [Double], vectors: [[Double]]) {
        var m = a
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<sweeps {
            var off = 0.0, total = 0.0
            for i in 0..<n {
                for j in 0..<n {
                    let x = m[i * n + j] * m[i * n + j]
                    total += x
                    if i != j { off += x }
                }
            }
            if off <= 1e-22 * max(total, 1e-300) { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = m[p * n + q]
                    guard abs(apq) > 1e-300 else { continue }
                    let theta = (m[q * n + q] - m[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let mkp = m[k * n + p], mkq = m[k * n + q]
                        m[k * n + p] = c * mkp - s * mkq
                        m[k * n + q] = s * mkp + c * mkq
                    }
                    for k in 0..<n {
                        let mpk = m[p * n + k], mqk = m[q * n + k]
                        m[p * n + k] = c * mpk - s * mqk
                        m[q * n + k] = s * mpk + c * mqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0 * n + $0] > m[$1 * n + $1] }
        return (order.map { m[$0 * n + $0] }, order.map { col in (0..<n).map { v[$0 * n + col] } })
    }
}
