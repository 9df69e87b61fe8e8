// IndexMem — kernel tests. Apache-2.0.
//
// The arithmetics llama.cpp's CPU backend uses for K-quant products besides `ggml_vec_dot_*`
// (repacked Q4_K gemv/gemm, the tiled K-quant matmul), against the scalar emulation in
// GGMLArithmetic.swift, through `MatMul.multiply` with the batch sizes that select them.

import Testing
import IndexMemKernels

@Suite("llama.cpp batched K-quant arithmetic")
struct BatchedArithmeticTests {
    static let pool = ThreadPool(threadCount: 2)

    @Test("the arithmetic follows llama.cpp's choice of kernel")
    func selection() {
        #expect(WeightType.q4_K.batchArithmetic(rows: 640, tokens: 1, repackable: true) == .repacked)
        #expect(WeightType.q4_K.batchArithmetic(rows: 640, tokens: 300, repackable: true) == .repacked)
        #expect(WeightType.q4_K.batchArithmetic(rows: 644, tokens: 7, repackable: true) == .vecDot)
        #expect(WeightType.q4_K.batchArithmetic(rows: 640, tokens: 8, repackable: false) == .tiled)
        #expect(WeightType.q6_K.batchArithmetic(rows: 640, tokens: 7, repackable: true) == .vecDot)
        #expect(WeightType.q6_K.batchArithmetic(rows: 640, tokens: 8, repackable: true) == .tiled)
        #expect(WeightType.q5_K.batchArithmetic(rows: 640, tokens: 9, repackable: true) == .tiled)
        #expect(WeightType.q8_0.batchArithmetic(rows: 640, tokens: 64, repackable: true) == .vecDot)
        #expect(WeightType.q5_0.batchArithmetic(rows: 640, tokens: 64, repackable: true) == .vecDot)
    }

    @Test("products equal the emulated llama.cpp kernels bit for bit", arguments: [WeightType.q4_K, .q5_K, .q6_K])
    func products(type: WeightType) {
        var rng = SeededRNG(seed: 0x5151 + UInt64(type.rawValue))
        let columns = 512
        for (rows, repackable) in [(16, true), (12, true), (16, false)] {
            let data = (0..<rows).flatMap { _ in randomRow(type, count: columns, rng: &rng) }
            data.withUnsafeBytes { raw in
                let matrix = WeightMatrix(data: raw.baseAddress!, type: type, rows: rows, columns: columns, repackable: repackable)
                for tokens in [1, 3, 4, 7, 8, 9, 13] {
                    let arithmetic = matrix.arithmetic(tokens: tokens)
                    let grouped = matrix.groupedActivationRows(tokens: tokens)
                    #expect(grouped == (arithmetic == .repacked ? tokens / 4 * 4 : 0))
                    var x = [Float](repeating: 0, count: tokens * columns)
                    for t in 0..<tokens { x.replaceSubrange((t * columns)..<((t + 1) * columns), with: rng.activations(columns)) }
                    // A -max/+max tie in the first block of every row.
                    for t in 0..<tokens { x[t * columns + 3] = -500; x[t * columns + 17] = 500 }
                    let rowBytes = ActivationType.q8_K.rowBytes(columns)
                    var prepared = [UInt8](repeating: 0, count: tokens * rowBytes)
                    var out = [Float](repeating: 0, count: tokens * rows)
                    x.withUnsafeBufferPointer { xp in
                        prepared.withUnsafeMutableBytes { pp in
                            MatMul.prepareActivations(xp.baseAddress!, tokens: tokens, columns: columns, inStride: columns, type: .q8_K,
                                                      into: pp.baseAddress!, pool: Self.pool, positiveTieRows: grouped)
                        }
                    }
                    prepared.withUnsafeBytes { pp in
                        out.withUnsafeMutableBufferPointer { op in
                            MatMul.multiply(matrix, activations: pp.baseAddress!, tokens: tokens, out: op.baseAddress!, outStride: rows, pool: Self.pool)
                        }
                    }
                    for t in 0..<tokens {
                        let at = Array(prepared[(t * rowBytes)..<((t + 1) * rowBytes)])
                        // The tie: gemm's quantizer takes +max, the row quantizer the first extreme (-500).
                        #expect(Int8(bitPattern: at[4 + 3]) == (t < grouped ? 127 : -127))
                        for r in 0..<rows {
                            let row = Array(data[(r * type.rowBytes(columns))..<((r + 1) * type.rowBytes(columns))])
                            let expected: Float
                            if arithmetic == .vecDot {
                                expected = ggmlAVX2Dot(type, row, at, count: columns)!
                            } else {
                                expected = ggmlBatchedDot(type, arithmetic, grouped: t < grouped, row, at, count: columns)
                            }
                            let got = out[t * rows + r]
                            #expect(got.bitPattern == expected.bitPattern || (got.isNaN && expected.isNaN),
                                    "\(type) \(arithmetic) rows \(rows) tokens \(tokens) [\(t), \(r)]: \(got) vs \(expected)")
                        }
                    }
                }
            }
        }
    }

    @Test("Q8_K with positive ties: +max wins a tie in magnitude, as ggml_quantize_mat_q8_K_4x8")
    func positiveTies() {
        var x = [Float](repeating: 0.25, count: 512)
        x[5] = -3; x[9] = 3                     // tie: +3 sets the sign (the row quantizer takes -3)
        x[256 + 200] = -7                       // no tie: the extreme's own sign
        for positive in [false, true] {
            var fast = [UInt8](repeating: 0, count: 584), slow = fast
            x.withUnsafeBufferPointer { xp in
                fast.withUnsafeMutableBytes { ActivationQuantizer.quantizeQ8_K(xp.baseAddress!, count: 512, into: $0.baseAddress!, positiveTies: positive) }
                slow.withUnsafeMutableBytes { ActivationQuantizer.quantizeQ8_KPortable(xp.baseAddress!, count: 512, into: $0.baseAddress!, positiveTies: positive) }
            }
            #expect(fast == slow)
            #expect(Int8(bitPattern: fast[4 + 9]) == (positive ? -127 : 127))
            #expect(Int8(bitPattern: fast[292 + 4 + 200]) == -127)
        }
    }

    @Test("GELU table equals ggml_table_gelu_f16 at known points")
    func geluTable() {
        // Values of llama.cpp's table (read from libggml-cpu), as f16 bit patterns.
        let known: [(UInt16, UInt16)] = [(0x3c00, 0x3abb), (0xbc00, 0xb115), (0x0000, 0x0000), (0x4000, 0x3fd2), (0xc000, 0xa9d0)]
        for (h, g) in known {
            #expect(Float16(VectorMath.geluTable[Int(h)]).bitPattern == g, "gelu(\(Float16(bitPattern: h)))")
        }
        // FNV-1a 64 of the whole table (little-endian f16 values of every non-NaN input) as
        // llama.cpp 0.3.36 builds it.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for h in 0..<65536 where !Float16(bitPattern: UInt16(h)).isNaN {
            let bits = Float16(VectorMath.geluTable[h]).bitPattern
            for byte in [UInt8(bits & 0xff), UInt8(bits >> 8)] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        #expect(hash == 0x097b_67b4_465d_8b6c)
        var gate: [Float] = [-11, -10, -0.5, 0, 0.5, 9.99, 10, 12]
        let up: [Float] = [2, 2, 2, 2, 2, 2, 2, 2]
        let input = gate
        gate.withUnsafeMutableBufferPointer { VectorMath.geglu($0.baseAddress!, up, count: 8) }
        #expect(gate[0] == 0 && gate[1] == 0 && gate[6] == 20 && gate[7] == 24)
        for i in 2..<6 {
            #expect(gate[i] == VectorMath.geluTable[Int(Float16(input[i]).bitPattern)] * 2)
        }
    }
}
