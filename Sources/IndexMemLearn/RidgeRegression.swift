// IndexMem — learning. Apache-2.0.
//
// Closed-form fit of the write-time indexer (KVzap's linear scorer): accumulate the normal
// equations X^T X, X^T y and y^T y while streaming teacher passes, then solve a ridge
// regression on standardised features. The ridge strength is chosen on held-out sequences
// (their own normal equations give the held-out squared error of any weights exactly).

import Foundation
import IndexMemKernels

// MARK: - Normal equations

/// Sufficient statistics of a linear least-squares problem with `features` inputs (the last
/// one a constant 1) and `outputs` targets.
package struct NormalEquations: Codable, Equatable {
    var features: Int
    var outputs: Int
    /// (features, features) upper triangle valid (X^T X), in double.
    var gram: [Double]
    /// (outputs, features) X^T y.
    var cross: [Double]
    /// (outputs) y^T y.
    var targetSquares: [Double]
    package var rows: Int

    package init(features: Int, outputs: Int) {
        self.features = features
        self.outputs = outputs
        gram = [Double](repeating: 0, count: features * features)
        cross = [Double](repeating: 0, count: outputs * features)
        targetSquares = [Double](repeating: 0, count: outputs)
        rows = 0
    }

    /// Adds rows: `columns` is (features, n) column-major features, `targets` (outputs, n).
    package mutating func add(columns: [Float], targets: [Float], count n: Int, pool: ThreadPool) {
        guard n > 0 else { return }
        let p = features
        gram.withUnsafeMutableBufferPointer { g in
            columns.withUnsafeBufferPointer { x in
                let gb = g.baseAddress!, xb = x.baseAddress!
                // Rows of the upper triangle split across threads (row i has p - i entries).
                pool.parallelFor(p) { range in
                    for i in range {
                        let xi = xb + i * n
                        for j in i..<p { gb[i * p + j] += Double(VectorMath.dot(xi, xb + j * n, count: n)) }
                    }
                }
            }
        }
        columns.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { y in
                for o in 0..<outputs {
                    let yo = y.baseAddress! + o * n
                    for i in 0..<p { cross[o * p + i] += Double(VectorMath.dot(x.baseAddress! + i * n, yo, count: n)) }
                    targetSquares[o] += Double(VectorMath.dot(yo, yo, count: n))
                }
            }
        }
        rows += n
    }

    static func + (a: NormalEquations, b: NormalEquations) -> NormalEquations {
        var s = a
        for i in s.gram.indices { s.gram[i] += b.gram[i] }
        for i in s.cross.indices { s.cross[i] += b.cross[i] }
        for i in s.targetSquares.indices { s.targetSquares[i] += b.targetSquares[i] }
        s.rows += b.rows
        return s
    }

    func g(_ i: Int, _ j: Int) -> Double { i <= j ? gram[i * features + j] : gram[j * features + i] }

    /// Mean squared error of weights `w` (outputs x features) on these rows.
    package func meanSquaredError(_ w: [[Double]]) -> Double {
        guard rows > 0 else { return .nan }
        let p = features
        var total = 0.0
        for o in 0..<outputs {
            var quadratic = 0.0, linear = 0.0
            for i in 0..<p {
                var row = 0.0
                for j in 0..<p { row += g(i, j) * w[o][j] }
                quadratic += w[o][i] * row
                linear += w[o][i] * cross[o * p + i]
            }
            total += quadratic - 2 * linear + targetSquares[o]
        }
        return total / Double(rows * outputs)
    }

    /// Ridge weights (outputs x features, bias last) for strength `lambda` on standardised
    /// features (the bias is not penalised).
    package func solve(lambda: Double) -> [[Double]] {
        let p = features, q = p - 1, n = Double(max(rows, 1))
        let mean = (0..<q).map { g($0, q) / n }
        let std = (0..<q).map { i in (max(g(i, i) / n - mean[i] * mean[i], 0)).squareRoot() + 1e-6 }
        // Correlation matrix plus lambda on the diagonal.
        var a = [Double](repeating: 0, count: q * q)
        for i in 0..<q {
            for j in i..<q {
                let c = (g(i, j) / n - mean[i] * mean[j]) / (std[i] * std[j])
                a[i * q + j] = c
                a[j * q + i] = c
            }
            a[i * q + i] += lambda
        }
        let factor = Cholesky(matrix: a, size: q)
        return (0..<outputs).map { o in
            let yMean = cross[o * p + q] / n
            let b = (0..<q).map { i in (cross[o * p + i] / n - mean[i] * yMean) / std[i] }
            let z = factor.solve(b)
            var w = (0..<q).map { z[$0] / std[$0] }
            w.append(yMean - (0..<q).reduce(0) { $0 + w[$1] * mean[$1] })
            return w
        }
    }
}

// MARK: - Cholesky

/// L L^T of a symmetric positive-definite matrix (jitter added if it is only semidefinite).
struct Cholesky {
    let size: Int
    private var lower: [Double]

    init(matrix: [Double], size n: Int) {
        size = n
        var jitter = 0.0
        while true {
            var l = [Double](repeating: 0, count: n * n)
            var ok = true
            outer: for i in 0..<n {
                for j in 0...i {
                    var s = matrix[i * n + j] + (i == j ? jitter : 0)
                    for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                    if i == j {
                        guard s > 0 else { ok = false; break outer }
                        l[i * n + i] = s.squareRoot()
                    } else {
                        l[i * n + j] = s / l[j * n + j]
                    }
                }
            }
            if ok { lower = l; return }
            jitter = jitter == 0 ? 1e-8 : jitter * 10
        }
    }

    func solve(_ b: [Double]) -> [Double] {
        let n = size
        var y = b
        for i in 0..<n {
            var s = y[i]
            for k in 0..<i { s -= lower[i * n + k] * y[k] }
            y[i] = s / lower[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = y[i]
            for k in (i + 1)..<n { s -= lower[k * n + i] * y[k] }
            y[i] = s / lower[i * n + i]
        }
        return y
    }
}
