// IndexMem — cache. Apache-2.0.
//
// Softmax attention of one query over a contiguous range of one head's slots, with the
// arithmetic of llama.cpp's CPU attention without flash attention (llama-cpp-python's
// default), so logits agree to float rounding:
//   * the query is rounded to f16; each score is an 8-lane FMA chain over the head
//     dimension, reduced in `hsum_float_8` order, then multiplied by the scale;
//   * softmax exponentials use ggml's vector `exp`, summed in double one group of 8 slots
//     at a time (slots aligned to multiples of 8, as llama.cpp's cells);
//   * probabilities are rounded to f16 and multiplied into V in 8 lanes by slot index,
//     reduced in `hsum_float_8` order.
// That is llama.cpp's batched path (tinyBLAS). A batch of one token (decode) goes through
// `ggml_vec_dot_f16` instead: four 8-lane accumulators over 32 elements, a different
// reduction, and slots grouped by 32; `singleQuery` selects that arithmetic.

import Foundation
import IndexMemKernels

// MARK: - Single-query attention

public enum AttentionKernel {
    /// Attention of one query over slots `lo..<hi` of `head` in `storage`.
    /// - Parameters:
    ///   - query: (headDimension) floats, already rounded to f16 precision.
    ///   - scale: multiplier of `q . k` before the softmax.
    ///   - probabilities: scratch of at least `hi + 8` floats; on return `probabilities[lo..<hi]`
    ///     hold the attention weights (f16-rounded), for policies that read attention.
    ///   - output: (headDimension) floats, overwritten (zeros when the range is empty).
    ///   - singleQuery: use llama.cpp's one-token (decode) arithmetic; scratch then needs `hi + 32` floats.
    ///   - windowStart: if set, slots whose position is below it are masked out (sliding
    ///     windows over slots that are not in position order).
    /// - Returns: the largest scaled score and the sum of `exp(score - max)`, so a caller can
    ///   merge further terms into the softmax; `(-inf, 0)` when nothing is visible.
    @inlinable @discardableResult
    public static func attend(
        query: UnsafePointer<Float>, storage: KVStorage, head: Int, lo: Int, hi: Int, scale: Float,
        probabilities: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, singleQuery: Bool = false,
        windowStart: Int32? = nil
    ) -> (max: Float, sum: Double) {
        precondition(storage.entryType == .f16, "AttentionKernel.attend reads f16 entries; use attendEntries")
        let d = storage.headDimension
        output.update(repeating: 0, count: d)
        guard lo < hi else { return (-.infinity, 0) }
        let p = probabilities
        // MARK: Scores
        if singleQuery {
            scoreSingle(query: query, keys: storage.keyRow(head: head, slot: 0), headDimension: d, lo: lo, hi: hi, into: p)
        } else {
            score(query: query, keys: storage.keyRow(head: head, slot: 0), headDimension: d, lo: lo, hi: hi, into: p)
        }
        let m = maskAndScale(p, lo: lo, hi: hi, scale: scale, storage: storage, head: head, windowStart: windowStart)
        if m == -.infinity { return (m, 0) }
        // MARK: Softmax over groups of 8 slots
        let lo8 = lo & ~7, hi8 = (hi + 7) & ~7
        for j in lo8..<lo { p[j] = -.infinity }
        for j in hi..<hi8 { p[j] = -.infinity }
        let raw = UnsafeMutableRawPointer(p)
        let mv = SIMD8<Float>(repeating: m)
        var sum: Double = 0
        var j = lo8
        while j < hi8 {
            let e = VectorMath.exp(raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) - mv)
            raw.storeBytes(of: e, toByteOffset: j * 4, as: SIMD8<Float>.self)
            sum += Double(VectorMath.horizontalSum(e))
            j += 8
        }
        let inv = SIMD8<Float>(repeating: Float(1 / sum))
        j = lo8
        while j < hi8 {
            // llama.cpp converts the probabilities to f16 before multiplying V.
            let w = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) * inv
            raw.storeBytes(of: SIMD8<Float>(SIMD8<Float16>(w)), toByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        // MARK: Values
        if singleQuery {
            let lo32 = lo & ~31, hi32 = (hi + 31) & ~31
            for j in lo32..<lo8 { p[j] = 0 }
            for j in hi8..<hi32 { p[j] = 0 }
            accumulateSingle(probabilities: p, tiles: storage.valueTile(head: head, slot: 0), headDimension: d,
                             lo32: lo32, hi32: hi32, into: output)
        } else {
            accumulate(probabilities: p, tiles: storage.valueTile(head: head, slot: 0), headDimension: d,
                       lo8: lo8, hi8: hi8, into: output)
        }
        return (m, sum)
    }

    /// Masks the scores `p[lo..<hi]` of slots before `windowStart`, multiplies them by `scale`
    /// and returns their largest; when that is -inf (nothing visible) the scores are zeroed.
    @inlinable @inline(__always)
    static func maskAndScale(
        _ p: UnsafeMutablePointer<Float>, lo: Int, hi: Int, scale: Float, storage: KVStorage, head: Int, windowStart: Int32?
    ) -> Float {
        if let windowStart {
            let positions = storage.positions(head: head)
            for j in lo..<hi where positions[j] < windowStart { p[j] = -.infinity }
        }
        var m = -Float.infinity
        for j in lo..<hi {
            p[j] *= scale
            m = max(m, p[j])
        }
        if m == -.infinity { for j in lo..<hi { p[j] = 0 } }
        return m
    }

    // MARK: One-token arithmetic (ggml_vec_dot_f16)

    /// `ggml_vec_dot_f16`'s reduction of its four accumulators.
    @inlinable @inline(__always)
    static func reduceVecDot(_ s0: SIMD8<Float>, _ s1: SIMD8<Float>, _ s2: SIMD8<Float>, _ s3: SIMD8<Float>) -> Float {
        let v = (s0 + s2) + (s1 + s3)
        let t = v.lowHalf + v.highHalf
        return (t[0] + t[1]) + (t[2] + t[3])
    }

    /// Scores as `ggml_vec_dot_f16`: 32 elements per step in four accumulators, the rest in double.
    @inlinable @inline(__always)
    static func scoreSingle(query: UnsafePointer<Float>, keys: UnsafePointer<UInt16>, headDimension d: Int, lo: Int, hi: Int,
                            into scores: UnsafeMutablePointer<Float>) {
        let rq = UnsafeRawPointer(query)
        let np = d & ~31
        for j in lo..<hi {
            let row = UnsafeRawPointer(keys + j &* d)
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var c = 0
            while c < np {
                s0.addProduct(rq.loadUnaligned(fromByteOffset: c &* 4, as: SIMD8<Float>.self),
                              SIMD8<Float>(row.loadUnaligned(fromByteOffset: c &* 2, as: SIMD8<Float16>.self)))
                s1.addProduct(rq.loadUnaligned(fromByteOffset: c &* 4 &+ 32, as: SIMD8<Float>.self),
                              SIMD8<Float>(row.loadUnaligned(fromByteOffset: c &* 2 &+ 16, as: SIMD8<Float16>.self)))
                s2.addProduct(rq.loadUnaligned(fromByteOffset: c &* 4 &+ 64, as: SIMD8<Float>.self),
                              SIMD8<Float>(row.loadUnaligned(fromByteOffset: c &* 2 &+ 32, as: SIMD8<Float16>.self)))
                s3.addProduct(rq.loadUnaligned(fromByteOffset: c &* 4 &+ 96, as: SIMD8<Float>.self),
                              SIMD8<Float>(row.loadUnaligned(fromByteOffset: c &* 2 &+ 48, as: SIMD8<Float16>.self)))
                c &+= 32
            }
            var sum = Double(reduceVecDot(s0, s1, s2, s3))
            let k = keys + j &* d
            while c < d { sum += Double(query[c] * Half.toFloat(k[c])); c &+= 1 }
            scores[j] = Float(sum)
        }
    }

    /// `out[i] = sum_j p_j v_j[i]` as one `ggml_vec_dot_f16` per output dimension over slots
    /// `lo32..<hi32`: accumulator `(j / 8) % 4`, lane `j % 8`. Each pass over every fourth tile
    /// fills one accumulator of eight dimensions.
    @inlinable @inline(__always)
    static func accumulateSingle(probabilities p: UnsafePointer<Float>, tiles: UnsafePointer<UInt16>, headDimension d: Int,
                                 lo32: Int, hi32: Int, into out: UnsafeMutablePointer<Float>) {
        let rp = UnsafeRawPointer(p)
        var i0 = 0
        while i0 < d {
            // acc[phase * 8 + i]: eight lanes of dimension i0 + i from the tiles of one phase.
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 32) { acc in
                for phase in 0..<4 {
                    var a = TileAccumulators()
                    var j = lo32 &+ phase &* 8
                    while j < hi32 {
                        a.add(rp.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self), tile: UnsafeRawPointer(tiles + (j &* d &+ i0 &* 8)))
                        j &+= 32
                    }
                    let base = phase &* 8
                    acc[base] = a.a0; acc[base &+ 1] = a.a1; acc[base &+ 2] = a.a2; acc[base &+ 3] = a.a3
                    acc[base &+ 4] = a.a4; acc[base &+ 5] = a.a5; acc[base &+ 6] = a.a6; acc[base &+ 7] = a.a7
                }
                for i in 0..<8 {
                    out[i0 &+ i] = reduceVecDot(acc[i], acc[8 &+ i], acc[16 &+ i], acc[24 &+ i])
                }
            }
            i0 &+= 8
        }
    }

    /// `scores[j] = q . k_j` for `j` in `lo..<hi`, four keys at a time.
    @inlinable @inline(__always)
    static func score(query: UnsafePointer<Float>, keys: UnsafePointer<UInt16>, headDimension d: Int, lo: Int, hi: Int,
                      into scores: UnsafeMutablePointer<Float>) {
        let rq = UnsafeRawPointer(query)
        @inline(__always) func key(_ j: Int, _ c: Int) -> SIMD8<Float> {
            let offset: Int = j &* d &+ c
            let h = UnsafeRawPointer(keys + offset).loadUnaligned(as: SIMD8<Float16>.self)
            return SIMD8<Float>(h)
        }
        var j = lo
        while j &+ 4 <= hi {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var c = 0
            while c < d {
                let q = rq.loadUnaligned(fromByteOffset: c &* 4, as: SIMD8<Float>.self)
                a0.addProduct(q, key(j, c))
                a1.addProduct(q, key(j &+ 1, c))
                a2.addProduct(q, key(j &+ 2, c))
                a3.addProduct(q, key(j &+ 3, c))
                c &+= 8
            }
            let sums = horizontalSums(a0, a1, a2, a3)
            UnsafeMutableRawPointer(scores + j).storeBytes(of: sums, as: SIMD4<Float>.self)
            j &+= 4
        }
        while j < hi {
            var a = SIMD8<Float>()
            var c = 0
            while c < d {
                a.addProduct(rq.loadUnaligned(fromByteOffset: c &* 4, as: SIMD8<Float>.self), key(j, c))
                c &+= 8
            }
            scores[j] = VectorMath.horizontalSum(a)
            j &+= 1
        }
    }

    /// `out[i] = sum_j p_j v_j[i]` over whole tiles `lo8..<hi8`, eight output dimensions at a time.
    @inlinable @inline(__always)
    static func accumulate(probabilities p: UnsafePointer<Float>, tiles: UnsafePointer<UInt16>, headDimension d: Int,
                           lo8: Int, hi8: Int, into out: UnsafeMutablePointer<Float>) {
        let rp = UnsafeRawPointer(p)
        var i0 = 0
        while i0 < d {
            var a = TileAccumulators()
            var j = lo8
            while j < hi8 {
                a.add(rp.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self), tile: UnsafeRawPointer(tiles + (j &* d &+ i0 &* 8)))
                j &+= 8
            }
            let lo4 = horizontalSums(a.a0, a.a1, a.a2, a.a3), hi4 = horizontalSums(a.a4, a.a5, a.a6, a.a7)
            UnsafeMutableRawPointer(out + i0).storeBytes(of: SIMD8<Float>(lowHalf: lo4, highHalf: hi4), as: SIMD8<Float>.self)
            i0 &+= 8
        }
    }

    /// Four `hsum_float_8` reductions at once (same order per lane, transposed).
    @inlinable @inline(__always)
    static func horizontalSums(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>) -> SIMD4<Float> {
        let r0 = a0.highHalf + a0.lowHalf, r1 = a1.highHalf + a1.lowHalf
        let r2 = a2.highHalf + a2.lowHalf, r3 = a3.highHalf + a3.lowHalf
        let c0 = SIMD4<Float>(r0[0], r1[0], r2[0], r3[0])
        let c1 = SIMD4<Float>(r0[1], r1[1], r2[1], r3[1])
        let c2 = SIMD4<Float>(r0[2], r1[2], r2[2], r3[2])
        let c3 = SIMD4<Float>(r0[3], r1[3], r2[3], r3[3])
        let even: SIMD4<Float> = c0 + c2
        let odd: SIMD4<Float> = c1 + c3
        return even + odd
    }

    /// First index in `0..<count` whose position is greater than `p` (positions ascend).
    @inlinable
    public static func upperBound(_ positions: UnsafePointer<Int32>, _ count: Int, _ p: Int32) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            if positions[mid] <= p { lo = mid &+ 1 } else { hi = mid }
        }
        return lo
    }

    /// Rounds `d` floats to f16 precision (llama.cpp converts the query before `q . k`).
    @inlinable
    public static func roundToHalf(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count d: Int) {
        var i = 0
        while i + 8 <= d {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD8<Float>(SIMD8<Float16>(v)), as: SIMD8<Float>.self)
            i += 8
        }
        while i < d { out[i] = Float(Float16(x[i])); i += 1 }
    }
}

// MARK: - Value tile accumulation

/// Eight output dimensions' lanes: `a_i += w * tile[i]`, one value tile row (8 slots) each.
@usableFromInline
struct TileAccumulators {
    @usableFromInline var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    @usableFromInline var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()

    @inlinable init() {}

    /// - Parameters:
    ///   - w: the probabilities of 8 slots.
    ///   - tile: 8 rows of 8 f16 values (8 dimensions of those slots).
    @inlinable @inline(__always)
    mutating func add(_ w: SIMD8<Float>, tile t: UnsafeRawPointer) {
        a0.addProduct(w, SIMD8<Float>(t.loadUnaligned(as: SIMD8<Float16>.self)))
        a1.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 16, as: SIMD8<Float16>.self)))
        a2.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float16>.self)))
        a3.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 48, as: SIMD8<Float16>.self)))
        a4.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float16>.self)))
        a5.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 80, as: SIMD8<Float16>.self)))
        a6.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float16>.self)))
        a7.addProduct(w, SIMD8<Float>(t.loadUnaligned(fromByteOffset: 112, as: SIMD8<Float16>.self)))
    }
}
