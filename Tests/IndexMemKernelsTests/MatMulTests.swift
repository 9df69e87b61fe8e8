// IndexMem — kernel tests. Apache-2.0.
//
// The tiled, threaded matrix product (and its eight-row grouped kernel) against per-row dot
// products and a scalar reference.

import Testing
import IndexMemKernels

@Suite("Matrix products")
struct MatMulTests {
    static let pool = ThreadPool(threadCount: 2)

    @Test("multiply matches per-row dots and a double reference",
          arguments: [WeightType.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    func multiply(type: WeightType) {
        // The grouped products run with the AVX2 kernel, then (where the CPU has it) AVX-VNNI's.
        let saved = MatMul.useVNNI
        defer { MatMul.useVNNI = saved }
        for vnni in Set([false, CPUFeatures.hasAVXVNNI]).sorted(by: { !$0 && $1 }) {
            MatMul.useVNNI = vnni
            multiply(type: type, label: vnni ? "vnni" : "avx2")
        }
    }

    func multiply(type: WeightType, label: String) {
        var rng = SeededRNG(seed: 0x77 + UInt64(type.rawValue))
        let columns = 512
        let kernels = formatKernels(type)
        // From 8 rows on, llama.cpp multiplies K-quants with other arithmetic (see
        // BatchedArithmeticTests); the 32-value formats keep `dot`'s, in groups of eight.
        let tokenCounts = [WeightType.q4_K, .q5_K, .q6_K].contains(type) ? [1, 3, 4, 7] : [1, 3, 4, 7, 8, 13, 20]
        for rows in [5, 37] {
            let data = (0..<rows).flatMap { _ in randomRow(type, count: columns, rng: &rng) }
            data.withUnsafeBytes { raw in
                let matrix = WeightMatrix(data: raw.baseAddress!, type: type, rows: rows, columns: columns)
                for tokens in tokenCounts {
                    let inStride = columns + 3, outStride = rows + 5
                    var x = [Float](repeating: 0, count: tokens * inStride)
                    for t in 0..<tokens { x.replaceSubrange((t * inStride)..<(t * inStride + columns), with: rng.activations(columns)) }
                    let act = type.activationType
                    var prepared = [UInt8](repeating: 0, count: tokens * act.rowBytes(columns))
                    var out = [Float](repeating: -7, count: tokens * outStride)
                    x.withUnsafeBufferPointer { xp in
                        prepared.withUnsafeMutableBytes { pp in
                            MatMul.prepareActivations(xp.baseAddress!, tokens: tokens, columns: columns, inStride: inStride,
                                                      type: act, into: pp.baseAddress!, pool: Self.pool)
                        }
                    }
                    prepared.withUnsafeBytes { pp in
                        out.withUnsafeMutableBufferPointer { op in
                            MatMul.multiply(matrix, activations: pp.baseAddress!, tokens: tokens, out: op.baseAddress!,
                                            outStride: outStride, pool: Self.pool)
                        }
                    }
                    for t in 0..<tokens {
                        let xt = Array(x[(t * inStride)..<(t * inStride + columns)])
                        let at = quantizeActivations(act, xt)
                        #expect(Array(prepared[(t * act.rowBytes(columns))..<((t + 1) * act.rowBytes(columns))]) == at)
                        for r in 0..<rows {
                            let row = Array(data[(r * type.rowBytes(columns))..<((r + 1) * type.rowBytes(columns))])
                            let one = at.withUnsafeBytes { kernels.dot(matrix.row(r), $0.baseAddress!, columns) }
                            let got = out[t * outStride + r]
                            // dot8 (groups of eight tokens, 32-value block formats), dot4 (groups of four) and
                            // dot (the rest) agree bit for bit.
                            #expect(got.bitPattern == one.bitPattern, "\(label) \(type) rows \(rows) tokens \(tokens) [\(t), \(r)]")
                            let ref = referenceDot(type, row, at, count: columns)
                            #expect(abs(Double(got) - ref.value) <= 4e-6 * ref.magnitude + 1e-30, "\(type) [\(t), \(r)]: \(got) vs \(ref.value)")
                        }
                        for r in rows..<outStride { #expect(out[t * outStride + r] == -7, "padding written") }
                    }
                }
                // dequantizeRow is the format's dequantizer.
                var row = [Float](repeating: 0, count: columns)
                row.withUnsafeMutableBufferPointer { matrix.dequantizeRow(rows - 1, into: $0.baseAddress!) }
                let ref = referenceDequantize(type, Array(data[((rows - 1) * type.rowBytes(columns))...]), count: columns)
                #expect(row.map(\.bitPattern) == ref.values.map(\.bitPattern))
            }
        }
    }

    @Test("parallelFor covers every index exactly once")
    func parallelFor() {
        for count in [0, 1, 2, 3, 17, 1000] {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
            hits.initialize(repeating: 0, count: max(count, 1))
            defer { hits.deallocate() }
            Self.pool.parallelFor(count) { range in for i in range { hits[i] += 1 } }
            #expect((0..<count).allSatisfy { hits[$0] == 1 })
            Self.pool.parallelForWithThread(count) { thread, range in
                #expect(thread >= 0 && thread < Self.pool.threadCount)
                for i in range { hits[i] += 1 }
            }
            #expect((0..<count).allSatisfy { hits[$0] == 2 })
        }
    }
}
