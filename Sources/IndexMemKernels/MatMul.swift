// IndexMem — kernels. Apache-2.0.

import Foundation

#if arch(x86_64)
import _Builtin_intrinsics.intel
import IndexMemKernelsVNNI
#endif

// MARK: - Quantized weight matrix

/// A row-major weight matrix kept in its file's storage type (rows of `columns` elements).
/// `y = W x` computes one dot product per row against activations prepared in
/// `type.activationType`.
public struct WeightMatrix: @unchecked Sendable {
    public let data: UnsafeRawPointer
    public let type: WeightType
    /// Output dimension.
    public let rows: Int
    /// Input dimension (row length).
    public let columns: Int
    public let rowBytes: Int
    public let kernels: WeightKernels

    /// Whether llama.cpp would keep this matrix in its repack buffer (every matrix-product
    /// weight except a token embedding reused as the output layer); selects the arithmetic of
    /// Q4_K products (see `BatchArithmetic`).
    public let repackable: Bool

    public init(data: UnsafeRawPointer, type: WeightType, rows: Int, columns: Int, repackable: Bool = true) {
        self.data = data
        self.type = type
        self.rows = rows
        self.columns = columns
        self.rowBytes = type.rowBytes(columns)
        self.kernels = WeightKernels.of(type)
        self.repackable = repackable
    }

    /// The same matrix, marked as not repackable (a token embedding reused as the output layer).
    public func notRepackable() -> WeightMatrix {
        WeightMatrix(data: data, type: type, rows: rows, columns: columns, repackable: false)
    }

    /// llama.cpp's arithmetic for a product with `tokens` activation rows.
    public func arithmetic(tokens: Int) -> BatchArithmetic {
        type.batchArithmetic(rows: rows, tokens: tokens, repackable: repackable)
    }

    /// How many leading activation rows of a `tokens`-row product llama.cpp quantizes in
    /// groups of four (`ggml_quantize_mat_q8_K_4x8`, repacked Q4_K only); see
    /// `MatMul.prepareActivations(positiveTieRows:)`.
    public func groupedActivationRows(tokens: Int) -> Int {
        arithmetic(tokens: tokens) == .repacked ? tokens - tokens % 4 : 0
    }

    @inlinable public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Dequantizes row `r` into `out` (`columns` floats).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        kernels.dequantize(row(r), out, columns)
    }
}

// MARK: - Matrix products

public enum MatMul {
    /// Whether products of eight or more rows use the AVX-VNNI kernel (bit-identical to the
    /// AVX2 one). Off unless `INDEXMEM_VNNI=1` and the CPU has it: in paired runs its batched
    /// decode step was slower than the AVX2 grouped kernel's (3.4-3.8x one sequence's against
    /// 2.6-2.7x, `bench --batch 8`). Tests switch it to cover both.
    nonisolated(unsafe) public static var useVNNI =
        CPUFeatures.hasAVXVNNI && ProcessInfo.processInfo.environment["INDEXMEM_VNNI"] == "1"

    /// Rows of tiles: each thread walks its row range in blocks of this many rows, and
    /// every token is multiplied by the block while it is in cache.
    @usableFromInline static let rowBlock = 16

    /// `out[t, r] = W[r, :] . x[t, :]` for `tokens` activation rows.
    /// - Parameters:
    ///   - activations: `tokens` rows in `weight.type.activationType`, stride
    ///     `activationType.rowBytes(weight.columns)` bytes.
    ///   - out: (tokens, outStride) floats; columns `0..<weight.rows` are written.
    public static func multiply(
        _ weight: WeightMatrix, activations: UnsafeRawPointer, tokens: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool
    ) {
        #if arch(x86_64)
        if tokens >= GroupedActivationScales.rowsPerGroup {
            // Concrete types, so each product is specialised (a cast to the protocol is not).
            func grouped<G: GroupedBlockFormat>(_: G.Type) {
                multiplyGrouped(G.self, weight, activations: activations, tokens: tokens, out: out, outStride: outStride, pool: pool)
            }
            switch weight.type {
            case .q4_0: return grouped(Q4_0.self)
            case .q4_1: return grouped(Q4_1.self)
            case .q5_0: return grouped(Q5_0.self)
            case .q5_1: return grouped(Q5_1.self)
            case .q8_0: return grouped(Q8_0.self)
            default: break
            }
        }
        #endif
        // Opens the existential once; the loop below is specialised per format.
        func run<F: RowFormat>(_ format: F.Type) {
            multiplyTiled(F.self, weight, activations: activations, tokens: tokens, out: out, outStride: outStride, pool: pool)
        }
        run(weight.type.rowFormat)
    }

    @inline(__always)
    static func multiplyTiled<F: RowFormat>(
        _: F.Type, _ weight: WeightMatrix, activations: UnsafeRawPointer, tokens: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool
    ) {
        let rows = weight.rows
        let blocks = (rows + rowBlock - 1) / rowBlock
        let arithmetic = weight.arithmetic(tokens: tokens)
        pool.parallelFor(blocks) { range in
            for blk in range {
                multiplyTile(F.self, weight, rows: blk * rowBlock..<min(rows, (blk + 1) * rowBlock), activations: activations,
                             tokens: 0..<tokens, arithmetic: arithmetic, out: out, outStride: outStride)
            }
        }
    }

    /// Rows `rows` of the product for activation rows `tokens`: four activation rows per
    /// weight row read while four remain, then one.
    @inline(__always)
    static func multiplyTile<F: RowFormat>(
        _: F.Type, _ weight: WeightMatrix, rows: Range<Int>, activations: UnsafeRawPointer, tokens: Range<Int>,
        arithmetic: BatchArithmetic, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let aStride = weight.type.activationType.rowBytes(weight.columns)
        let n = weight.columns, rowBytes = weight.rowBytes, data = weight.data
        let r0 = rows.lowerBound, r1 = rows.upperBound
        var t = tokens.lowerBound
        while t + 4 <= tokens.upperBound {
            let a = activations + t * aStride
            let o = out + t * outStride
            for r in r0..<r1 {
                let v = F.dot4(data + r * rowBytes, a, aStride: aStride, count: n, arithmetic: arithmetic)
                o[r] = v[0]; o[outStride + r] = v[1]; o[2 * outStride + r] = v[2]; o[3 * outStride + r] = v[3]
            }
            t += 4
        }
        while t < tokens.upperBound {
            let a = activations + t * aStride
            let o = out + t * outStride
            for r in r0..<r1 { o[r] = F.dot(data + r * rowBytes, a, count: n, arithmetic: arithmetic) }
            t += 1
        }
    }

    #if arch(x86_64)
    /// `multiplyTiled` for the 32-value block formats: activation rows in groups of eight
    /// (`GroupedBlocks.dot8`, the weight block decoded once for eight rows), the rest as
    /// `multiplyTile`. Bit-identical to it.
    @inline(__always)
    static func multiplyGrouped<F: GroupedBlockFormat>(
        _: F.Type, _ weight: WeightMatrix, activations: UnsafeRawPointer, tokens: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool
    ) {
        let aStride = weight.type.activationType.rowBytes(weight.columns)
        let rows = weight.rows, rowBytes = weight.rowBytes, data = weight.data
        let blocks = weight.columns / 32
        let groupRows = GroupedActivationScales.rowsPerGroup
        let groups = tokens / groupRows
        let vnni = useVNNI
        // One allocation per product: the activation scales, then (VNNI) each thread's decoded row.
        let scaleBytes = GroupedActivationScales.floats(groups: groups, blocks: blocks) * MemoryLayout<Float>.size
        let rowScratchBytes = vnni ? decodedRowBytes(blocks: blocks) : 0
        let rowScratchStart = (scaleBytes + 127) & ~127
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: rowScratchStart + pool.threadCount * rowScratchBytes, alignment: 128)
        defer { buffer.deallocate() }
        let scales = buffer.bindMemory(to: Float.self, capacity: scaleBytes / MemoryLayout<Float>.size)
        let rowScratch = buffer + rowScratchStart
        GroupedActivationScales.gather(activations, aStride: aStride, groups: groups, blocks: blocks, hasMinimum: F.hasMinimum, into: scales)
        let arithmetic = weight.arithmetic(tokens: tokens)
        let rowBlocks = (rows + rowBlock - 1) / rowBlock
        pool.parallelForWithThread(rowBlocks) { thread, range in
            for blk in range {
                let r0 = blk * rowBlock, r1 = min(rows, r0 + rowBlock)
                if vnni {
                    multiplyGroupsVNNI(F.self, weight, rows: r0..<r1, activations: activations, groups: groups, scales: scales,
                                       decodedRow: rowScratch + thread * rowScratchBytes, out: out, outStride: outStride)
                } else {
                    for g in 0..<groups {
                        let a = activations + g * groupRows * aStride
                        let s = UnsafePointer(scales + g * blocks * 16)
                        let o = out + g * groupRows * outStride
                        for r in r0..<r1 {
                            let v = GroupedBlocks.dot8(F.self, data + r * rowBytes, a, aStride: aStride, blocks: blocks, scales: s)
                            for t in 0..<groupRows { o[t * outStride + r] = v[t] }
                        }
                    }
                }
                if groups * groupRows < tokens {
                    multiplyTile(F.self, weight, rows: r0..<r1, activations: activations, tokens: groups * groupRows..<tokens,
                                 arithmetic: arithmetic, out: out, outStride: outStride)
                }
            }
        }
    }

    /// Bytes of one thread's decoded weight row for `multiplyGroupsVNNI`: 32 quant bytes and
    /// two float scales per block, rounded up to whole 128-byte line pairs so two threads never
    /// write the same cache line (sharing one made the batched step 1.4x slower).
    static func decodedRowBytes(blocks: Int) -> Int { (blocks * 40 + 127) & ~127 }

    /// Rows `rows` against every group of eight activation rows with the AVX-VNNI kernel:
    /// each weight row is decoded once (quants and float scales) into `decodedRow` for all groups.
    @inline(__always)
    static func multiplyGroupsVNNI<F: GroupedBlockFormat>(
        _: F.Type, _ weight: WeightMatrix, rows: Range<Int>, activations: UnsafeRawPointer, groups: Int,
        scales: UnsafeMutablePointer<Float>, decodedRow quants: UnsafeMutableRawPointer, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let aStride = weight.type.activationType.rowBytes(weight.columns)
        let blocks = weight.columns / 32, groupRows = GroupedActivationScales.rowsPerGroup
        let weightScales = (quants + blocks * 32).bindMemory(to: Float.self, capacity: blocks * 2)
        for r in rows {
            let row = weight.data + r * weight.rowBytes
            for b in 0..<blocks {
                let x = row + b * F.weightBlockBytes
                quants.storeBytes(of: F.groupedQuants(x), toByteOffset: 32 * b, as: __m256i.self)
                // d and m (or d and two quant bytes), as in GroupedBlocks.dot8.
                let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(Int32(bitPattern: x.loadUnaligned(as: UInt32.self))))
                let f = unsafeBitCast(dm, to: SIMD4<Float>.self)
                weightScales[2 * b] = f[0]
                weightScales[2 * b + 1] = f[1]
            }
            for g in 0..<groups {
                let v = GroupedDotVNNI.dot8(
                    quants: quants, weightScales: weightScales, activations: activations + g * groupRows * aStride, aStride: aStride,
                    blocks: blocks, activationScales: scales + g * blocks * 16, hasMinimum: F.hasMinimum)
                let o = out + g * groupRows * outStride
                for t in 0..<groupRows { o[t * outStride + r] = v[t] }
            }
        }
    }
    #endif

    /// Quantizes `tokens` float rows of `columns` (stride `inStride`) into `type`, in parallel.
    /// - Parameter positiveTieRows: the first this many rows (Q8_K only) are quantized as
    ///   `ggml_quantize_mat_q8_K_4x8` does (`WeightMatrix.groupedActivationRows`).
    public static func prepareActivations(
        _ x: UnsafePointer<Float>, tokens: Int, columns: Int, inStride: Int,
        type: ActivationType, into out: UnsafeMutableRawPointer, pool: ThreadPool, positiveTieRows: Int = 0
    ) {
        let stride = type.rowBytes(columns)
        @inline(__always) func one(_ t: Int) {
            if type == .q8_K {
                ActivationQuantizer.quantizeQ8_K(x + t * inStride, count: columns, into: out + t * stride, positiveTies: t < positiveTieRows)
            } else {
                ActivationQuantizer.quantize(type, x + t * inStride, count: columns, into: out + t * stride)
            }
        }
        if tokens < 4 {
            for t in 0..<tokens { one(t) }
            return
        }
        pool.parallelFor(tokens) { range in
            for t in range { one(t) }
        }
    }
}
