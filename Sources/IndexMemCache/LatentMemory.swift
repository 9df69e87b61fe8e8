// IndexMem — cache. Apache-2.0.
//
// The latent memory of IndexMem (DESIGN.md, "The IndexMem method"): per layer and KV head a
// state M (r x d) and a stabiliser b (r) fold in every evicted entry, and a gated readout is
// added to the attention output of each query:
//
//     on eviction of (k, v):  M <- lambda M + eta phi(k) v^T,   b <- lambda b + eta phi(k)^2
//     readout for query q:    m(q) = phi(q)^T M / ((phi(q)^2)^T b + eps)
//     attention output:       o(q) = Attention(q, kept entries) + g(q) m(q)
//
// with phi(x) = W x (d -> r, shared by keys and queries) and g(q) = sigmoid(w_g . q + c_g).
// The readout sits outside the softmax. While nothing has been evicted, or with g = 0, the
// output is exactly plain attention. Parameters come from an adapter file (trained per model).

import Foundation

// MARK: - Parameters

/// The memory parameters of one layer.
public struct LatentMemoryParameters: Sendable, Codable, Equatable {
    /// Rank of the state.
    public var rank: Int
    public var headDimension: Int
    /// (kvHeads, rank, headDimension) projection phi.
    public var projection: [Float]
    /// (kvHeads, headDimension) gate weights and (kvHeads) gate biases.
    public var gateWeights: [Float]
    public var gateBiases: [Float]
    /// Decay per absorbed entry and write rate.
    public var decay: Float
    public var writeRate: Float
    public var epsilon: Float

    public init(rank: Int, headDimension: Int, projection: [Float], gateWeights: [Float], gateBiases: [Float],
                decay: Float = 1, writeRate: Float = 1, epsilon: Float = 1e-6) {
        self.rank = rank
        self.headDimension = headDimension
        self.projection = projection
        self.gateWeights = gateWeights
        self.gateBiases = gateBiases
        self.decay = decay
        self.writeRate = writeRate
        self.epsilon = epsilon
    }

    public var kvHeads: Int { gateBiases.count }
}

// MARK: - Memory

/// An evicted-entry receiver that keeps a compressed memory of what was evicted.
///
/// `addReadout` runs for every query and head from the attention threads: it reads the
/// parameters and state through pointers held for the memory's life, with no array
/// retain/release (shared reference counts would bounce between the cores).
public final class LatentMemory: EvictedEntryReceiver {
    public let parameters: LatentMemoryParameters
    private let rank: Int, headDimension: Int
    private let decay: Float, writeRate: Float, epsilon: Float
    /// (kvHeads, rank, headDimension) projection, (kvHeads, headDimension) gate weights,
    /// (kvHeads) gate biases: copies of the parameters.
    private let projection: UnsafeMutableBufferPointer<Float>
    private let gateWeights: UnsafeMutableBufferPointer<Float>
    private let gateBiases: UnsafeMutableBufferPointer<Float>
    /// (kvHeads, rank, headDimension) states and (kvHeads, rank) stabilisers.
    private let state: UnsafeMutableBufferPointer<Float>
    private let stabiliser: UnsafeMutableBufferPointer<Float>
    /// Entries absorbed per head.
    public private(set) var absorbed: [Int]

    public init(parameters p: LatentMemoryParameters) {
        parameters = p
        rank = p.rank
        headDimension = p.headDimension
        decay = p.decay
        writeRate = p.writeRate
        epsilon = p.epsilon
        func copy(_ a: [Float]) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: a.count)
            _ = b.initialize(from: a)
            return b
        }
        projection = copy(p.projection)
        gateWeights = copy(p.gateWeights)
        gateBiases = copy(p.gateBiases)
        state = copy([Float](repeating: 0, count: p.kvHeads * p.rank * p.headDimension))
        stabiliser = copy([Float](repeating: 0, count: p.kvHeads * p.rank))
        absorbed = [Int](repeating: 0, count: p.kvHeads)
    }

    deinit {
        for b in [projection, gateWeights, gateBiases, state, stabiliser] { b.deallocate() }
    }

    public var readoutForm: ReadoutForm { .residual }
    public var bytes: Int { (state.count + stabiliser.count) * 4 }

    public func reset() {
        state.update(repeating: 0)
        stabiliser.update(repeating: 0)
        for i in absorbed.indices { absorbed[i] = 0 }
    }

    /// phi(x) = W_head x into `out` (rank floats).
    @inline(__always)
    func project(head: Int, _ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = headDimension
        let base = projection.baseAddress! + head * rank * d
        for r in 0..<rank {
            var s: Float = 0
            let row = base + r * d
            for i in 0..<d { s += row[i] * x[i] }
            out[r] = s
        }
    }

    public func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let d = headDimension
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rank) { phi in
            project(head: head, key, into: phi.baseAddress!)
            let mb = state.baseAddress! + head * rank * d, bb = stabiliser.baseAddress! + head * rank
            for r in 0..<rank {
                let f = phi[r]
                let row = mb + r * d
                for i in 0..<d { row[i] = decay * row[i] + writeRate * f * value[i] }
                bb[r] = decay * bb[r] + writeRate * f * f
            }
        }
        absorbed[head] += 1
    }

    public func addReadout(head: Int, query: UnsafePointer<Float>, position: Int32, output: UnsafeMutablePointer<Float>) {
        guard absorbed[head] > 0 else { return }
        let d = headDimension
        var gateInput = gateBiases[head]
        let g = gateWeights.baseAddress! + head * d
        for i in 0..<d { gateInput += g[i] * query[i] }
        let gate = 1 / (1 + expf(-gateInput))
        guard gate > 0 else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rank) { phi in
            project(head: head, query, into: phi.baseAddress!)
            let mb = state.baseAddress! + head * rank * d, bb = stabiliser.baseAddress! + head * rank
            var denominator = epsilon
            for r in 0..<rank { denominator += phi[r] * phi[r] * bb[r] }
            let scale = gate / denominator
            for r in 0..<rank {
                let f = phi[r] * scale
                let row = mb + r * d
                for i in 0..<d { output[i] += f * row[i] }
            }
        }
    }
}
