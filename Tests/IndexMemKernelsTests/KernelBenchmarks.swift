// IndexMem — kernel tests. Apache-2.0.
//
// Micro-benchmark of the row kernels, off by default: `INDEXMEM_BENCH=1 swift test -c release
// --filter KernelBenchmarks`. Prints ns per 2048-column row for `dot` and, per token, `dot4`,
// and for whole products on one thread (`MatMul.multiply`, where the kernels are inlined)
// ns per row and token with 1 and 8 activation rows: a batched decode step's saving.

import Foundation
import Testing
import IndexMemKernels

@Suite("Kernel benchmarks", .enabled(if: ProcessInfo.processInfo.environment["INDEXMEM_BENCH"] != nil))
struct KernelBenchmarks {
    static let onePool = ThreadPool(threadCount: 1)

    @Test("ns per 2048-column row")
    func rows() {
        let columns = 2048, rows = 64
        var rng = SeededRNG(seed: 99)
        var report = "type   dot ns/row   dot4 ns/row/token   GB/s (dot)   multiply ns/row/token: 1 row   8 rows\n"
        for type in WeightType.allCases {
            let k = formatKernels(type)
            let data = (0..<rows).flatMap { _ in randomRow(type, count: columns, rng: &rng) }
            let act = (0..<8).flatMap { _ in quantizeActivations(type.activationType, rng.activations(columns)) }
            let stride = type.activationType.rowBytes(columns), rowBytes = type.rowBytes(columns)
            var sink: Float = 0
            func time(_ body: () -> Void) -> Double {
                var best = Double.infinity
                for _ in 0..<40 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    body()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
                }
                return best
            }
            let (one, four) = data.withUnsafeBytes { w in
                act.withUnsafeBytes { a in
                    let one = time { for r in 0..<rows { sink += k.dot(w.baseAddress! + r * rowBytes, a.baseAddress!, columns) } } / Double(rows)
                    let four = time { for r in 0..<rows { sink += k.dot4(w.baseAddress! + r * rowBytes, a.baseAddress!, stride, columns)[0] } } / Double(rows * 4)
                    return (one, four)
                }
            }
            let (single, eight) = data.withUnsafeBytes { w in
                act.withUnsafeBytes { a in
                    let matrix = WeightMatrix(data: w.baseAddress!, type: type, rows: rows, columns: columns)
                    var out = [Float](repeating: 0, count: 8 * rows)
                    func product(_ tokens: Int) -> Double {
                        out.withUnsafeMutableBufferPointer { o in
                            time { MatMul.multiply(matrix, activations: a.baseAddress!, tokens: tokens, out: o.baseAddress!, outStride: rows, pool: Self.onePool) }
                        } / Double(rows * tokens)
                    }
                    return (product(1), product(8))
                }
            }
            report += "\(type.description.padding(toLength: 6, withPad: " ", startingAt: 0)) \(String(format: "%10.1f", one))   \(String(format: "%17.1f", four))   \(String(format: "%10.1f", Double(rowBytes) / one))   \(String(format: "%28.1f", single))   \(String(format: "%6.1f", eight))\n"
            #expect(sink.isFinite || !sink.isFinite)
        }
        // Activation preparation for one 2048-value row.
        let x = rng.activations(columns)
        for type in [ActivationType.q8_0, .q8_1, .q8_K, .f16] {
            var out = [UInt8](repeating: 0, count: type.rowBytes(columns))
            var best = Double.infinity
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBytes { op in
                    for _ in 0..<200 {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        ActivationQuantizer.quantize(type, xp.baseAddress!, count: columns, into: op.baseAddress!)
                        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
                    }
                }
            }
            report += "quantize \(type): \(String(format: "%.0f", best)) ns per 2048 values\n"
        }
        print(report)
    }
}
