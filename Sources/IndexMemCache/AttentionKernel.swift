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

// MARK: - Attention over position-sorted entries

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

extension AttentionKernel {
    /// Softmax attention of one query over entries whose positions ascend, so the visible
    /// ones (causal, and inside the sliding window) form one contiguous range.
    /// Head dimensions that are multiples of 64 are processed in slices of 64 floats held in registers; four keys are
    /// scored at once with a transposing horizontal add, which halves the work of a plain
    /// per-key dot product and reduction.
    /// - Parameters:
    ///   - query: (headDimension) floats, already rounded to f16 precision.
    ///   - keys, values: (count, headDimension) f16 bits.
    ///   - positions: (count) ascending absolute positions.
    ///   - scores: scratch of `count` floats.
    ///   - output: (headDimension) floats, overwritten.
    @inlinable
    public static func attendSorted(
        query: UnsafePointer<Float>, keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>,
        positions: UnsafePointer<Int32>, count: Int, queryPosition: Int32, window: Int32?,
        headDimension d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        if d % 64 != 0 {
            attend(query: query, keys: keys, values: values, positions: positions, count: count, queryPosition: queryPosition,
                   window: window, headDimension: d, scale: scale, scores: scores, output: output)
            return
        }
        let hi = upperBound(positions, count, queryPosition)
        let lo = window.map { upperBound(positions, hi, queryPosition - $0) } ?? 0
        output.update(repeating: 0, count: d)
        guard lo < hi else { return }
        let n = hi - lo
        let k = keys + lo * d, v = values + lo * d
        scores.update(repeating: 0, count: n)
        var slice = 0
        while slice < d {
            scoreSlice(query + slice, k + slice, stride: d, count: n, into: scores)
            slice += 64
        }
        var m = -Float.infinity
        for j in 0..<n {
            scores[j] *= scale
            if scores[j] > m { m = scores[j] }
        }
        var sum: Float = 0
        for j in 0..<n {
            let e = expf(scores[j] - m)
            scores[j] = e
            sum += e
        }
        // llama.cpp multiplies V by the probabilities converted to f16.
        let inv = 1 / sum
        for j in 0..<n { scores[j] = Half.toFloat(Half.bits(scores[j] * inv)) }
        slice = 0
        while slice < d {
            accumulateSlice(scores, v + slice, stride: d, count: n, into: output + slice)
            slice += 64
        }
    }

    /// First index whose position is greater than `p` (positions ascend).
    @inlinable @inline(__always)
    static func upperBound(_ positions: UnsafePointer<Int32>, _ count: Int, _ p: Int32) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            if positions[mid] <= p { lo = mid &+ 1 } else { hi = mid }
        }
        return lo
    }

    /// `scores[j] += q[0..<64] . k_j[0..<64]` for `count` keys `stride` halves apart.
    @inlinable @inline(__always)
    static func scoreSlice(_ q: UnsafePointer<Float>, _ k: UnsafePointer<UInt16>, stride: Int, count: Int, into scores: UnsafeMutablePointer<Float>) {
        let rq = UnsafeRawPointer(q)
        let q0 = rq.loadUnaligned(as: SIMD8<Float>.self), q1 = rq.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        let q2 = rq.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), q3 = rq.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        let q4 = rq.loadUnaligned(fromByteOffset: 128, as: SIMD8<Float>.self), q5 = rq.loadUnaligned(fromByteOffset: 160, as: SIMD8<Float>.self)
        let q6 = rq.loadUnaligned(fromByteOffset: 192, as: SIMD8<Float>.self), q7 = rq.loadUnaligned(fromByteOffset: 224, as: SIMD8<Float>.self)
        @inline(__always) func dot(_ j: Int) -> SIMD8<Float> {
            let r = UnsafeRawPointer(k + j &* stride)
            var a = q0 * SIMD8<Float>(r.loadUnaligned(as: SIMD8<Float16>.self))
            a.addProduct(q1, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 16, as: SIMD8<Float16>.self)))
            a.addProduct(q2, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float16>.self)))
            a.addProduct(q3, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 48, as: SIMD8<Float16>.self)))
            a.addProduct(q4, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float16>.self)))
            a.addProduct(q5, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 80, as: SIMD8<Float16>.self)))
            a.addProduct(q6, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float16>.self)))
            a.addProduct(q7, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 112, as: SIMD8<Float16>.self)))
            return a
        }
        var j = 0
        #if arch(x86_64)
        while j &+ 4 <= count {
            let a0 = unsafeBitCast(dot(j), to: __m256.self), a1 = unsafeBitCast(dot(j &+ 1), to: __m256.self)
            let a2 = unsafeBitCast(dot(j &+ 2), to: __m256.self), a3 = unsafeBitCast(dot(j &+ 3), to: __m256.self)
            let h = unsafeBitCast(_mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3)), to: SIMD8<Float>.self)
            let sums = h.lowHalf + h.highHalf
            let out = UnsafeMutableRawPointer(scores + j)
            out.storeBytes(of: out.loadUnaligned(as: SIMD4<Float>.self) + sums, as: SIMD4<Float>.self)
            j &+= 4
        }
        #endif
        while j < count {
            scores[j] += dot(j).sum()
            j &+= 1
        }
    }

    /// `out[0..<64] += sum_j p_j v_j[0..<64]` for `count` values `stride` halves apart.
    @inlinable @inline(__always)
    static func accumulateSlice(_ p: UnsafePointer<Float>, _ v: UnsafePointer<UInt16>, stride: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        var o0 = SIMD8<Float>(), o1 = SIMD8<Float>(), o2 = SIMD8<Float>(), o3 = SIMD8<Float>()
        var o4 = SIMD8<Float>(), o5 = SIMD8<Float>(), o6 = SIMD8<Float>(), o7 = SIMD8<Float>()
        for j in 0..<count {
            let w = SIMD8<Float>(repeating: p[j])
            let r = UnsafeRawPointer(v + j &* stride)
            o0.addProduct(w, SIMD8<Float>(r.loadUnaligned(as: SIMD8<Float16>.self)))
            o1.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 16, as: SIMD8<Float16>.self)))
            o2.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float16>.self)))
            o3.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 48, as: SIMD8<Float16>.self)))
            o4.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float16>.self)))
            o5.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 80, as: SIMD8<Float16>.self)))
            o6.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float16>.self)))
            o7.addProduct(w, SIMD8<Float>(r.loadUnaligned(fromByteOffset: 112, as: SIMD8<Float16>.self)))
        }
        let ro = UnsafeMutableRawPointer(out)
        ro.storeBytes(of: ro.loadUnaligned(as: SIMD8<Float>.self) + o0, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self) + o1, toByteOffset: 32, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self) + o2, toByteOffset: 64, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self) + o3, toByteOffset: 96, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 128, as: SIMD8<Float>.self) + o4, toByteOffset: 128, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 160, as: SIMD8<Float>.self) + o5, toByteOffset: 160, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 192, as: SIMD8<Float>.self) + o6, toByteOffset: 192, as: SIMD8<Float>.self)
        ro.storeBytes(of: ro.loadUnaligned(fromByteOffset: 224, as: SIMD8<Float>.self) + o7, toByteOffset: 224, as: SIMD8<Float>.self)
    }
}
