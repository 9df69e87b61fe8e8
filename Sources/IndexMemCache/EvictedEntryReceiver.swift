// IndexMem — cache. Apache-2.0.
//
// Every entry the selector drops goes to the layer's evicted-entry receiver ("sink" is
// avoided on purpose: sink tokens are StreamingLLM's protected first tokens). The default
// receiver drops it; the latent memory folds it into a small state and adds a readout inside
// attention, either as a residual on the output or merged into the softmax.

// MARK: - Receiver

/// How a receiver's readout enters attention.
public enum ReadoutForm: Sendable, Equatable {
    /// Nothing is added (the entries are simply dropped).
    case none
    /// `output += readout(q)` after the softmax over kept entries (IndexMem's gated memory).
    case residual
    /// The receiver supplies a numerator vector and a denominator that join the kept
    /// entries' softmax (LESS-style).
    case softmaxMerge
}

/// Takes the entries one layer evicts, per KV head.
public protocol EvictedEntryReceiver: AnyObject {
    var readoutForm: ReadoutForm { get }
    /// Bytes of state the receiver holds (reported beside the KV bytes).
    var bytes: Int { get }

    /// One evicted entry.
    /// - Parameters:
    ///   - key: (headDimension) floats, rotated at `position`.
    ///   - value: (headDimension) floats.
    func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32)

    /// `.residual`: adds the readout of `query` to `output` (both headDimension floats), which
    /// holds the attention output over the kept entries. `query` is the rotated query of one
    /// query head of KV head `head`; `kept` is the kept entries' largest scaled score and the
    /// sum of exp(score - max) (log Z_kept = max + log sum), what a gate needs to weigh the
    /// memory against them.
    func addReadout(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                    kept: (max: Float, sum: Double), output: UnsafeMutablePointer<Float>)

    /// `.softmaxMerge`: the receiver's share of the softmax for `query`: writes
    /// `numerator` (headDimension floats) so that the merged output is
    /// `(kept numerator + numerator * e^(shift)) / (kept denominator + denominator * e^(shift))`,
    /// where both sides are relative to their own maximum, returned as `maxScore`.
    /// - Returns: `(maxScore, denominator)`, or `(-inf, 0)` when it holds nothing.
    func softmaxShare(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                      numerator: UnsafeMutablePointer<Float>) -> (maxScore: Float, denominator: Double)

    /// Forgets everything.
    func reset()
}

extension EvictedEntryReceiver {
    public func addReadout(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                           kept: (max: Float, sum: Double), output: UnsafeMutablePointer<Float>) {}
    public func softmaxShare(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                             numerator: UnsafeMutablePointer<Float>) -> (maxScore: Float, denominator: Double) { (-.infinity, 0) }
}

/// Makes the receiver of one layer's evicted entries (called once per budgeted layer when a
/// session makes its caches).
public typealias ReceiverFactory = @Sendable (LayerContext) -> any EvictedEntryReceiver

/// Drops evicted entries (the default).
public final class DiscardingReceiver: EvictedEntryReceiver {
    public init() {}
    public var readoutForm: ReadoutForm { .none }
    public var bytes: Int { 0 }
    public func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {}
    public func reset() {}
}
