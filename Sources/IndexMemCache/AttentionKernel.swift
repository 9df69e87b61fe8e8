// IndexMem — cache. Apache-2.0.
//
// Keys and values are stored as f16, as llama.cpp's default KV cache. llama.cpp also
// rounds the query to f16 before `q . k` (its f16 dot product converts the f32 operand), so
// we do the same: the attention scores then agree to float rounding. Without flash
// attention (llama-cpp-python's default) it also converts the probabilities to f16 before
// multiplying them with V; so do we.

import Foundation
import IndexMemKernels

// MARK: - Single-head attention over f16 storage

public enum AttentionKernel {
    /// Softmax attention of one query over `count` stored entries of one KV head.
    /// - Parameters:
    ///   - query: (headDimension) floats, already rounded to f16 precision by the caller.
    ///   - keys: (count, headDimension) f16 bits.
    ///   - values: (count, headDimension) f16 bits.
    ///   - positions: (count) absolute positions; entries outside the causal (and sliding)
    ///     window of `queryPosition` are skipped.
    ///   - scores: scratch of at least `count` floats.
    ///   - output: (headDimension) floats, overwritten.
    @inlinable
    public static func attend(
        query: UnsafePointer<Float>, keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>,
        positions: UnsafePointer<Int32>, count: Int, queryPosition: Int32, window: Int32?,
        headDimension d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        let low: Int32 = window.map { queryPosition - $0 } ?? Int32.min
        var maxScore = -Float.infinity
        for j in 0..<count {
            let p = positions[j]
            if p > queryPosition || p <= low { scores[j] = -Float.infinity; continue }
            let s = dotF16(query, keys + j * d, d) * scale
            scores[j] = s
            if s > maxScore { maxScore = s }
        }
        output.update(repeating: 0, count: d)
        if maxScore == -Float.infinity { return }
        var sum: Float = 0
        for j in 0..<count {
            let s = scores[j]
            if s == -Float.infinity { scores[j] = 0; continue }
            let e = expf(s - maxScore)
            scores[j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<count where scores[j] != 0 {
            // llama.cpp multiplies V by the probabilities converted to f16.
            axpyF16(Half.toFloat(Half.bits(scores[j] * inv)), values + j * d, output, d)
        }
    }

    @inlinable @inline(__always)
    static func dotF16(_ q: UnsafePointer<Float>, _ k: UnsafePointer<UInt16>, _ d: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let rq = UnsafeRawPointer(q), rk = UnsafeRawPointer(k)
        while i + 8 <= d {
            acc.addProduct(rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self),
                           SIMD8<Float>(rk.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<Float16>.self)))
            i += 8
        }
        var s = acc.sum()
        while i < d { s += q[i] * Half.toFloat(k[i]); i += 1 }
        return s
    }

    @inlinable @inline(__always)
    static func axpyF16(_ a: Float, _ v: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, _ d: Int) {
        var i = 0
        let rv = UnsafeRawPointer(v), ry = UnsafeMutableRawPointer(y)
        while i + 8 <= d {
            var acc = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc.addProduct(a, SIMD8<Float>(rv.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<Float16>.self)))
            ry.storeBytes(of: acc, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < d { y[i] += a * Half.toFloat(v[i]); i += 1 }
    }
}
