// IndexMem — cache. Apache-2.0.
//
// Softmax attention of one query over a range of one head's Q8_0 entries, with the arithmetic
// of llama.cpp's flash-attention CPU path (llama.cpp runs quantized V only with flash
// attention): the query is quantized to Q8_0 (the vec_dot type of a q8_0 key), every score is
// an int8 block dot product times both scales; the softmax weights stay in float (flash
// attention does not round them to f16) and multiply the dequantized values. Flash attention
// folds the softmax in online; this kernel takes two passes over the scores, which adds the
// same terms up to float rounding and leaves the weights for policies that read attention.

import IndexMemKernels

// MARK: - Attention over Q8_0 entries

public enum Q8AttentionKernel {
    /// Attention of one query over slots `lo..<hi` of `head` in a q8_0 `storage`.
    /// - Parameters:
    ///   - query: (headDimension) floats, as the model computed them (not rounded to f16).
    ///   - quantizedQuery: scratch of at least `storage.rowBytes` bytes.
    ///   - scale: multiplier of `q . k` before the softmax.
    ///   - probabilities: scratch of at least `hi + 8` floats; on return `probabilities[lo..<hi]`
    ///     hold the attention weights.
    ///   - output: (headDimension) floats, overwritten (zeros when nothing is visible).
    ///   - windowStart: if set, slots whose position is below it are masked out.
    /// - Returns: the largest scaled score and the sum of `exp(score - max)`; `(-inf, 0)` when
    ///   nothing is visible.
    @inlinable @discardableResult
    public static func attend(
        query: UnsafePointer<Float>, quantizedQuery: UnsafeMutableRawPointer, storage: KVStorage, head: Int, lo: Int, hi: Int,
        scale: Float, probabilities p: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, windowStart: Int32? = nil
    ) -> (max: Float, sum: Double) {
        let d = storage.headDimension, blocks = d / KVQ8_0.blockValues, rowBytes = storage.rowBytes
        guard lo < hi else {
            output.update(repeating: 0, count: d)
            return (-.infinity, 0)
        }
        KVQ8_0.quantize(query, count: d, into: quantizedQuery)
        KVQ8_0.scores(query: UnsafeRawPointer(quantizedQuery), keys: UnsafeRawPointer(storage.quantizedKeyRow(head: head, slot: 0)),
                      rowBytes: rowBytes, blocks: blocks, lo: lo, hi: hi, into: p)
        let m = AttentionKernel.maskAndScale(p, lo: lo, hi: hi, scale: scale, storage: storage, head: head, windowStart: windowStart)
        if m == -.infinity {
            output.update(repeating: 0, count: d)
            return (m, 0)
        }
        // Exponentials 8 at a time; the lanes past `hi` (scratch) are masked to contribute 0.
        let end = lo + (hi - lo + 7) / 8 * 8
        for j in hi..<end { p[j] = -.infinity }
        let raw = UnsafeMutableRawPointer(p)
        let mv = SIMD8<Float>(repeating: m)
        var sum: Double = 0
        var j = lo
        while j < end {
            let e = VectorMath.exp(raw.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) - mv)
            raw.storeBytes(of: e, toByteOffset: j &* 4, as: SIMD8<Float>.self)
            sum += Double(VectorMath.horizontalSum(e))
            j &+= 8
        }
        let inv = SIMD8<Float>(repeating: Float(1 / sum))
        j = lo
        while j < end {
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * inv, toByteOffset: j &* 4, as: SIMD8<Float>.self)
            j &+= 8
        }
        KVQ8_0.accumulate(probabilities: p, values: UnsafeRawPointer(storage.quantizedValueRow(head: head, slot: 0)), rowBytes: rowBytes,
                          blocks: blocks, lo: lo, hi: hi, into: output)
        return (m, sum)
    }
}

// MARK: - Either entry type

extension AttentionKernel {
    /// Attention of one query over slots `lo..<hi` of `head`, in the arithmetic of the
    /// storage's entry type: f16 entries round the query to f16 and run llama.cpp's
    /// non-flash attention (`attend(query:...)`); q8_0 entries quantize it to Q8_0 and run
    /// its flash attention (`Q8AttentionKernel`).
    /// - Parameters:
    ///   - query: (headDimension) floats, as the model computed them.
    ///   - queryScratch: (headDimension) floats of scratch for the rounded or quantized query.
    ///   - probabilities: scratch of at least `hi + 32` floats (see `attend(query:...)`).
    @inlinable @discardableResult
    public static func attendEntries(
        query: UnsafePointer<Float>, queryScratch: UnsafeMutablePointer<Float>, storage: KVStorage, head: Int, lo: Int, hi: Int,
        scale: Float, probabilities: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, singleQuery: Bool,
        windowStart: Int32? = nil
    ) -> (max: Float, sum: Double) {
        switch storage.entryType {
        case .f16:
            roundToHalf(query, into: queryScratch, count: storage.headDimension)
            return attend(query: queryScratch, storage: storage, head: head, lo: lo, hi: hi, scale: scale, probabilities: probabilities,
                          output: output, singleQuery: singleQuery, windowStart: windowStart)
        case .q8_0:
            return Q8AttentionKernel.attend(query: query, quantizedQuery: UnsafeMutableRawPointer(queryScratch), storage: storage, head: head,
                                            lo: lo, hi: hi, scale: scale, probabilities: probabilities, output: output, windowStart: windowStart)
        }
    }
}
