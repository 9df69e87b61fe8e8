// IndexMem — learning tests. Apache-2.0.
//
// Hand-written gradients against finite differences (in double, on tiny shapes), the ridge
// regression against a known linear function, and the learning-rate schedule.

import Foundation
import IndexMemKernels
import IndexMemLearn
import Testing

@Suite("Indexer training math")
struct GradientTests {
    static func example(_ rng: inout SplitMix64, hidden: Int, queries: Int, entries: Int) -> IndexerExample {
        let q = (0..<(queries * hidden)).map { _ in rng.float(-1, 1) }
        let e = (0..<(entries * hidden)).map { _ in rng.float(-1, 1) }
        var t = (0..<entries).map { _ in rng.float(0, 1) }
        let s = t.reduce(0, +)
        t = t.map { $0 / s }
        return IndexerExample(queries: q, entries: e, teacher: t, queryCount: queries, entryCount: entries)
    }

    /// The loss in double, written plainly from its definition (the reference for finite differences).
    static func referenceLoss(_ flat: [Double], _ w: QueryIndexerWeights, _ e: IndexerExample, temperature: Double) -> Double {
        let H = w.heads, r = w.keyDimension, d = w.hidden
        let qOff = 0, kOff = w.query.count, wOff = w.query.count + w.key.count
        func dot(_ a: Int, _ x: [Float], _ xo: Int) -> Double { (0..<d).reduce(0.0) { $0 + flat[a + $1] * Double(x[xo + $1]) } }
        var s = [Double](repeating: 0, count: e.entryCount)
        for j in 0..<e.entryCount {
            let k = (0..<r).map { dot(kOff + $0 * d, e.entries, j * d) }
            for t in 0..<e.queryCount {
                for h in 0..<H {
                    let weight = dot(wOff + h * d, e.queries, t * d)
                    let q = (0..<r).map { dot(qOff + (h * r + $0) * d, e.queries, t * d) }
                    s[j] += weight * max(0, zip(q, k).reduce(0) { $0 + $1.0 * $1.1 })
                }
            }
            s[j] /= Double(e.queryCount) * temperature
        }
        let m = s.max()!
        let logZ = log(s.reduce(0) { $0 + exp($1 - m) }) + m
        return (0..<e.entryCount).reduce(0) { total, j in
            let p = Double(e.teacher[j])
            return p > 0 ? total + p * (log(p) - (s[j] - logZ)) : total
        }
    }

    @Test("query-aware indexer: gradient equals finite differences of a double reference", arguments: [UInt64(1), 2, 3])
    func queryIndexerGradient(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let ex = Self.example(&rng, hidden: 6, queries: 3, entries: 7)
        var w = QueryIndexerWeights(heads: 2, keyDimension: 3, hidden: 6, seed: seed)
        // Larger weights so that several ReLUs are active and the scores differ.
        w.flat = w.flat.map { $0 * 4 }
        let (loss, gradient) = QueryIndexerLoss.lossAndGradient(w, ex, temperature: 0.5)
        let base = w.flat.map(Double.init)
        #expect(abs(Double(loss) - Self.referenceLoss(base, w, ex, temperature: 0.5)) < 1e-4)
        var worst = 0.0
        for i in base.indices {
            let h = 1e-5
            var p = base, m = base
            p[i] += h; m[i] -= h
            let numeric = (Self.referenceLoss(p, w, ex, temperature: 0.5) - Self.referenceLoss(m, w, ex, temperature: 0.5)) / (2 * h)
            let error = abs(numeric - Double(gradient[i])) / max(1e-3, abs(numeric) + abs(Double(gradient[i])))
            worst = max(worst, error)
        }
        #expect(worst < 1e-3, "largest relative gradient error \(worst)")
        #expect(gradient.contains { abs($0) > 1e-4 }, "the gradient is not trivially zero")
    }

    @Test("the loss is zero when the scores reproduce the teacher, positive otherwise")
    func lossBounds() {
        var rng = SplitMix64(seed: 9)
        let ex = Self.example(&rng, hidden: 5, queries: 2, entries: 4)
        let w = QueryIndexerWeights(heads: 1, keyDimension: 2, hidden: 5, seed: 9)
        #expect(QueryIndexerLoss.lossAndGradient(w, ex).0 > 0)
        var zero = w
        zero.flat = w.flat.map { _ in 0 }
        var uniform = ex
        uniform.teacher = [Float](repeating: 0.25, count: 4)
        #expect(abs(QueryIndexerLoss.lossAndGradient(zero, uniform).0) < 1e-6)
    }

    @Test("Adam lowers the loss on one example")
    func adamDescends() {
        var rng = SplitMix64(seed: 5)
        let ex = Self.example(&rng, hidden: 8, queries: 4, entries: 10)
        var w = QueryIndexerWeights(heads: 2, keyDimension: 4, hidden: 8, seed: 5)
        var adam = AdamState(count: w.count)
        let first = QueryIndexerLoss.lossAndGradient(w, ex).0
        for step in 0..<200 {
            let (_, g) = QueryIndexerLoss.lossAndGradient(w, ex)
            adam.update(&w.flat, gradient: g, rate: AdamState.rate(peak: 0.05, step: step, total: 200))
        }
        #expect(QueryIndexerLoss.lossAndGradient(w, ex).0 < first * 0.5)
    }

    @Test("schedule: warm-up, stable, decay")
    func schedule() {
        #expect(AdamState.rate(peak: 1, step: 0, total: 100) == 0.2)
        #expect(AdamState.rate(peak: 1, step: 50, total: 100) == 1)
        #expect(AdamState.rate(peak: 1, step: 90, total: 100) == 0.5)
    }

    @Test("ridge regression recovers a linear function; held-out error is exact")
    func ridge() {
        var rng = SplitMix64(seed: 3)
        let p = 6, n = 400
        let truth: [Float] = [0.5, -1, 2, 0, 0.25, 3]  // bias last
        var columns = [Float](repeating: 0, count: p * n), targets = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var y: Float = truth[p - 1]
            for f in 0..<(p - 1) {
                let x = rng.float(-2, 2) * Float(f + 1) + Float(f)
                columns[f * n + i] = x
                y += truth[f] * x
            }
            columns[(p - 1) * n + i] = 1
            targets[i] = y
        }
        var equations = NormalEquations(features: p, outputs: 1)
        let pool = ThreadPool(threadCount: 2)
        equations.add(columns: columns, targets: targets, count: n, pool: pool)
        let w = equations.solve(lambda: 1e-9)[0]
        for f in 0..<p { #expect(abs(w[f] - Double(truth[f])) < 1e-3, "weight \(f): \(w[f]) vs \(truth[f])") }
        #expect(equations.meanSquaredError([w]) < 1e-4)
        #expect(equations.meanSquaredError([[Double](repeating: 0, count: p)]) > 1)
    }

    @Test("write-time listwise fit: gradient equals finite differences; Adam puts the teacher's favourite on top", arguments: [UInt64(4), 5])
    func listwiseGradient(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let rows = 9, p = 5
        let x = (0..<(rows * p)).map { i in i % p == p - 1 ? 1 : rng.float(-1, 1) }
        var teacher = (0..<rows).map { _ in rng.float(0, 1) }
        teacher[3] = 4
        let sum = teacher.reduce(0, +)
        teacher = teacher.map { $0 / sum }
        var w = (0..<p).map { _ in rng.float(-1, 1) }
        func reference(_ w: [Double]) -> Double {
            let s = (0..<rows).map { j in (0..<p).reduce(0.0) { $0 + w[$1] * Double(x[j * p + $1]) } }
            let m = s.max()!
            let logZ = log(s.reduce(0) { $0 + exp($1 - m) }) + m
            return (0..<rows).reduce(0) { $0 + Double(teacher[$1]) * (log(Double(teacher[$1])) - (s[$1] - logZ)) }
        }
        func lossAndGradient(_ w: [Float]) -> (Float, [Float]) {
            var g = [Float](repeating: 0, count: p), scratch = [Float](repeating: 0, count: rows)
            let loss = ListwiseStaticLoss.lossAndGradient(weights: w, features: x, rows: rows, featureCount: p, teacher: teacher,
                                                          gradient: &g, scratch: &scratch)
            return (loss, g)
        }
        let (loss, gradient) = lossAndGradient(w)
        let base = w.map(Double.init)
        #expect(abs(Double(loss) - reference(base)) < 1e-5)
        for i in 0..<p {
            var plus = base, minus = base
            plus[i] += 1e-5; minus[i] -= 1e-5
            let numeric = (reference(plus) - reference(minus)) / 2e-5
            #expect(abs(numeric - Double(gradient[i])) < 1e-4 * max(1, abs(numeric)), "weight \(i): \(gradient[i]) vs \(numeric)")
        }
        var adam = AdamState(count: p)
        for step in 0..<300 {
            adam.update(&w, gradient: lossAndGradient(w).1, rate: AdamState.rate(peak: 0.05, step: step, total: 300))
        }
        #expect(lossAndGradient(w).0 < loss * 0.8)
        let scores = (0..<rows).map { j in (0..<p).reduce(Float(0)) { $0 + w[$1] * x[j * p + $1] } }
        #expect(scores.indices.max { scores[$0] < scores[$1] } == 3)
    }
}
