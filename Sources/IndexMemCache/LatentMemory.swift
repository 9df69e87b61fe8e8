// IndexMem — cache. Apache-2.0.
//
// The latent memory of IndexMem: per layer and KV head, a state of fixed size that folds in
// every evicted entry, and a readout that gives back part of what eviction removed.
//
// What to give back is exact: with Z the softmax partition sums of the kept and the evicted
// entries and o their outputs,
//
//     o_full = (Z_kept o_kept + Z_ev o_ev) / (Z_kept + Z_ev) = o_kept + alpha (o_ev - o_kept),
//     alpha  = Z_ev / (Z_kept + Z_ev) = sigmoid(log Z_ev - log Z_kept).
//
// The memory estimates log Z_ev(q) and o_ev(q) from moments of the evicted entries: their
// count n, key and value sums, and, in an r-dimensional key subspace W (rows orthonormal; the
// principal directions of the layer's keys, from the teacher pass), the projected key sums,
// squares and the key-value cross sums M = sum (W k) v^T. Were keys and values jointly
// Gaussian, the softmax-tilted moments would be
//
//     log Z_ev(q) = log n + s q.mu + s^2/2 q^T Cov(k) q           ("mean term" + "spread")
//     o_ev(q)     = mean(v) + s Cov(v, k) q
//
// with s the attention scale and the covariances taken in the subspace. Two readouts:
//   * `.softmax` (memory-softmax, LESS style): the estimates join the kept entries' softmax
//     as one more term, exactly as above. Closed form: nothing is trained but W.
//   * `.gated` (IndexMem's residual readout): o = o_kept + g(q) (mean(v) + beta s Cov(v, k) q - o_kept),
//     g = sigmoid(c0 + c1 (log n + s q.mu - log Z_kept) + c2 spread): the gate sees the kept
//     entries' log-partition, and c, beta are fitted per head (`indexmem train memory`) so that
//     the readout restores o_full. c = (0, 1, 1), beta = 1 is the softmax readout.
// While nothing has been evicted, or with g = 0, the output is exactly plain attention. The
// state never grows: (1 + 2 d + r d + 2 r) floats per KV head.

import Foundation
import IndexMemKernels

// MARK: - Parameters

/// The memory parameters of one layer.
public struct LatentMemoryParameters: Sendable, Codable, Equatable {
    public var rank: Int
    public var headDimension: Int
    public var kvHeads: Int
    /// (kvHeads, rank, headDimension): the key subspace W, rows orthonormal.
    public var projection: [Float]
    /// (kvHeads, 3): gate bias, weight of the mean term (against log Z_kept), weight of the spread.
    public var gate: [Float]
    /// (kvHeads): weight beta of the covariance term of the evicted output's estimate.
    public var tilt: [Float]

    public static let gateInputs = 3
    /// The gate and tilt under which the gated readout equals the softmax readout.
    public static let closedFormGate: [Float] = [0, 1, 1]

    public init(rank: Int, headDimension: Int, kvHeads: Int, projection: [Float], gate: [Float]? = nil, tilt: [Float]? = nil) {
        self.rank = rank
        self.headDimension = headDimension
        self.kvHeads = kvHeads
        self.projection = projection
        self.gate = gate ?? (0..<kvHeads).flatMap { _ in Self.closedFormGate }
        self.tilt = tilt ?? [Float](repeating: 1, count: kvHeads)
    }

    /// Why these parameters cannot serve a layer of this shape, or nil.
    public func mismatch(kvHeads h: Int, headDimension d: Int) -> String? {
        if h != kvHeads || d != headDimension { return "memory for \(kvHeads) KV heads of dimension \(headDimension), the layer has \(h) of \(d)" }
        if rank < 1 || rank > d { return "memory rank \(rank) is not in 1...\(d)" }
        if projection.count != kvHeads * rank * d || gate.count != kvHeads * Self.gateInputs || tilt.count != kvHeads {
            return "memory tensors do not match rank \(rank), \(kvHeads) KV heads, dimension \(d)"
        }
        if !(projection + gate + tilt).allSatisfy(\.isFinite) { return "memory parameters hold NaN or infinity" }
        return nil
    }

    /// Bytes of state one memory of this shape holds (all KV heads).
    public var stateBytes: Int { Self.stateFloats(rank: rank, headDimension: headDimension) * kvHeads * MemoryLayout<Float>.size }

    /// Floats of state per KV head: count, key and value sums, projected key sums and squares, cross sums.
    public static func stateFloats(rank r: Int, headDimension d: Int) -> Int { 1 + 2 * d + 2 * r + r * d }
}

// MARK: - Memory

/// An evicted-entry receiver that keeps moments of what was evicted and reads them back.
///
/// Readouts run for every query and head from the attention threads: parameters and state are
/// read through pointers held for the memory's life (no array retain/release between cores).
public final class LatentMemory: EvictedEntryReceiver {
    public enum Readout: String, Sendable, CaseIterable {
        /// Trained gate, residual form (IndexMem).
        case gated
        /// Closed-form estimate merged into the softmax (memory-softmax).
        case softmax
        /// Absorbs and adds nothing (the trainer reads the estimates itself).
        case none
    }

    public let parameters: LatentMemoryParameters
    public let readout: Readout
    private let rank: Int, headDimension: Int, stride: Int
    /// Copies of W (kvHeads, rank, d), gate (kvHeads, 3) and tilt (kvHeads).
    private let projection: UnsafeMutableBufferPointer<Float>
    private let gate: UnsafeMutableBufferPointer<Float>
    private let tilt: UnsafeMutableBufferPointer<Float>
    /// Per KV head `stride` floats: [n, key sum (d), value sum (d), projected key sum (r),
    /// projected key squares (r), cross sums M (r, d)].
    private let state: UnsafeMutableBufferPointer<Float>
    /// Entries absorbed per head (the count each head's state starts with).
    public var absorbed: [Int] { (0..<parameters.kvHeads).map { Int(state[$0 * stride]) } }

    /// Whether head `head` holds any evicted entry.
    @inline(__always)
    public func holdsEntries(head: Int) -> Bool { state[head * stride] > 0 }

    public init(parameters p: LatentMemoryParameters, readout: Readout = .gated) {
        parameters = p
        self.readout = readout
        rank = p.rank
        headDimension = p.headDimension
        stride = LatentMemoryParameters.stateFloats(rank: p.rank, headDimension: p.headDimension)
        func copy(_ a: [Float]) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(a.count, 1))
            _ = b.initialize(from: a)
            return b
        }
        projection = copy(p.projection)
        gate = copy(p.gate)
        tilt = copy(p.tilt)
        state = copy([Float](repeating: 0, count: p.kvHeads * stride))
    }

    deinit {
        for b in [projection, gate, tilt, state] { b.deallocate() }
    }

    public var readoutForm: ReadoutForm {
        switch readout {
        case .gated: .residual
        case .softmax: .softmaxMerge
        case .none: .none
        }
    }

    public var bytes: Int { state.count * MemoryLayout<Float>.size }

    public func reset() {
        state.update(repeating: 0)
    }

    /// W_head x into `out` (rank floats).
    @inline(__always)
    private func project(head: Int, _ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = headDimension
        let base = projection.baseAddress! + head * rank * d
        for r in 0..<rank { out[r] = VectorMath.dot(base + r * d, x, count: d) }
    }

    public func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let d = headDimension, r = rank
        let s = state.baseAddress! + head * stride
        let keySum = s + 1, valueSum = keySum + d, projected = valueSum + d, squares = projected + r, cross = squares + r
        s[0] += 1
        VectorMath.add(key, into: keySum, count: d)
        VectorMath.add(value, into: valueSum, count: d)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: r) { phi in
            let p = phi.baseAddress!
            project(head: head, key, into: p)
            for i in 0..<r {
                projected[i] += p[i]
                squares[i] += p[i] * p[i]
                VectorMath.axpy(p[i], value, cross + i * d, count: d)
            }
        }
    }

    /// The moment estimates for `query` (rotated, one query head of KV head `head`): writes the
    /// evicted values' mean into `mean` and `s Cov(v, k) q` into `covariance` (d floats each) and
    /// returns log n + s q.mu and the spread s^2/2 q^T Cov(k) q; nil while nothing was absorbed.
    public func estimate(head: Int, query: UnsafePointer<Float>, scale: Float,
                         mean: UnsafeMutablePointer<Float>, covariance: UnsafeMutablePointer<Float>) -> (meanTerm: Float, spread: Float)? {
        let d = headDimension, r = rank
        let s = state.baseAddress! + head * stride
        let n = s[0]
        guard n > 0 else { return nil }
        let keySum = s + 1, valueSum = keySum + d, projected = valueSum + d, squares = projected + r, cross = squares + r
        let inverse = 1 / n
        let meanTerm = logf(n) + scale * VectorMath.dot(query, keySum, count: d) * inverse
        for i in 0..<d { mean[i] = valueSum[i] * inverse }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: r) { phi in
            let p = phi.baseAddress!
            project(head: head, query, into: p)
            var variance: Float = 0, centre: Float = 0
            for i in 0..<r {
                let mu = projected[i] * inverse
                variance += p[i] * p[i] * max(0, squares[i] * inverse - mu * mu)
                centre += p[i] * mu
            }
            // s Cov(v, Wk) Wq = s (M^T p / n - mean(v) (W mu . p)).
            for i in 0..<d { covariance[i] = -mean[i] * centre }
            for i in 0..<r { VectorMath.axpy(p[i] * inverse, cross + i * d, covariance, count: d) }
            for i in 0..<d { covariance[i] *= scale }
            return (meanTerm, 0.5 * scale * scale * variance)
        }
    }

    /// The gate's value for the estimates and the kept entries' log-partition.
    @inline(__always)
    public static func gateValue(_ c: UnsafePointer<Float>, meanTerm: Float, spread: Float, keptLogPartition: Float) -> Float {
        let x = c[0] + c[1] * (meanTerm - keptLogPartition) + c[2] * spread
        return 1 / (1 + expf(-min(max(x, -80), 80)))
    }

    public func addReadout(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                           kept: (max: Float, sum: Double), output: UnsafeMutablePointer<Float>) {
        guard holdsEntries(head: head) else { return }
        let d = headDimension
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * d) { buffer in
            let mean = buffer.baseAddress!, covariance = mean + d
            guard let (meanTerm, spread) = estimate(head: head, query: query, scale: scale, mean: mean, covariance: covariance) else { return }
            let keptLog = kept.sum > 0 ? kept.max + Float(log(kept.sum)) : -Float.infinity
            let g = Self.gateValue(gate.baseAddress! + head * LatentMemoryParameters.gateInputs, meanTerm: meanTerm, spread: spread,
                                   keptLogPartition: keptLog)
            guard g > 0 else { return }
            let beta = tilt[head]
            for i in 0..<d { output[i] += g * (mean[i] + beta * covariance[i] - output[i]) }
        }
    }

    public func softmaxShare(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                             numerator: UnsafeMutablePointer<Float>) -> (maxScore: Float, denominator: Double) {
        guard holdsEntries(head: head) else { return (-.infinity, 0) }
        let d = headDimension
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { buffer in
            let covariance = buffer.baseAddress!
            guard let (meanTerm, spread) = estimate(head: head, query: query, scale: scale, mean: numerator, covariance: covariance) else {
                return (-.infinity, 0)
            }
            for i in 0..<d { numerator[i] += covariance[i] }
            return (meanTerm + spread, 1)
        }
    }
}
