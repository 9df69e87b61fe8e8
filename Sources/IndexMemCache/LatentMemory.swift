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
public final class LatentMemory: EvictedEntryReceiver {
    public let parameters: LatentMemoryParameters
    /// (kvHeads, rank, headDimension) states.
    private var state: [Float]
    /// (kvHeads, rank) stabilisers.
    private var stabiliser: [Float]
    /// Entries absorbed per head.
    public private(set) var absorbed: [Int]

    public init(parameters: LatentMemoryParameters) {
        self.parameters = parameters
        let p = parameters
        state = [Float](repeating: 0, count: p.kvHeads * p.rank * p.headDimension)
        stabiliser = [Float](repeating: 0, count: p.kvHeads * p.rank)
        absorbed = [Int](repeating: 0, count: p.kvHeads)
    }

    public var readoutForm: ReadoutForm { .residual }
    public var bytes: Int { (state.count + stabiliser.count) * 4 }

    public func reset() {
        for i in state.indices { state[i] = 0 }
        for i in stabiliser.indices { stabiliser[i] = 0 }
        for i in absorbed.indices { absorbed[i] = 0 }
    }

    /// phi(x) = W_head x into `out` (rank floats).
    @inline(__always)
    func project(head: Int, _ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let p = parameters, d = p.headDimension
        parameters.projection.withUnsafeBufferPointer { w in
            let base = w.baseAddress! + head * p.rank * d
            for r in 0..<p.rank {
                var s: Float = 0
                let row = base + r * d
                for i in 0..<d { s += row[i] * x[i] }
                out[r] = s
            }
        }
    }

    public func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        let p = parameters, d = p.headDimension, rank = p.rank
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rank) { phi in
            project(head: head, key, into: phi.baseAddress!)
            state.withUnsafeMutableBufferPointer { m in
                stabiliser.withUnsafeMutableBufferPointer { b in
                    let mb = m.baseAddress! + head * rank * d, bb = b.baseAddress! + head * rank
                    for r in 0..<rank {
                        let f = phi[r]
                        let row = mb + r * d
                        for i in 0..<d { row[i] = p.decay * row[i] + p.writeRate * f * value[i] }
                        bb[r] = p.decay * bb[r] + p.writeRate * f * f
                    }
                }
            }
        }
        absorbed[head] += 1
    }

    public func addReadout(head: Int, query: UnsafePointer<Float>, position: Int32, output: UnsafeMutablePointer<Float>) {
        guard absorbed[head] > 0 else { return }
        let p = parameters, d = p.headDimension, rank = p.rank
        var gateInput = p.gateBiases[head]
        p.gateWeights.withUnsafeBufferPointer { w in
            let g = w.baseAddress! + head * d
            for i in 0..<d { gateInput += g[i] * query[i] }
        }
        let gate = 1 / (1 + expf(-gateInput))
        guard gate > 0 else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rank) { phi in
            project(head: head, query, into: phi.baseAddress!)
            state.withUnsafeBufferPointer { m in
                stabiliser.withUnsafeBufferPointer { b in
                    let mb = m.baseAddress! + head * rank * d, bb = b.baseAddress! + head * rank
                    var denominator = p.epsilon
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
    }
}
