// IndexMem — cache policies. Apache-2.0.
//
// StreamingLLM (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks",
// arXiv:2309.17453): keep the first tokens (attention sinks) and the most recent ones.
// Signals: none. Cost: O(1) per entry.
// As a scorer, an entry's score is its position, so the shared selector keeps the sinks and
// the newest `budget - sinks` entries. Deviation: the paper re-assigns positions inside the
// cache (re-rotation); we keep absolute positions, as kvpress's StreamingLLMPress does by
// default (GUIDE R8).

// MARK: - window

public struct WindowPolicy: EvictionPolicy {
    public static let definition = PolicyDefinition(
        name: "window", summary: "StreamingLLM: sinks + most recent", keeps: "StreamingLLM: sinks + most recent"
    ) { _ throws(PolicyError) in ResolvedPolicy(scorer: WindowPolicy()) }

    public init() {}
    public var spec: String { "window" }
    public var signals: PolicySignals { [] }

    public func makeScorer(for layer: LayerContext) -> any LayerScorer { Scorer() }

    final class Scorer: LayerScorer {
        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head), positions = storage.positions(head: head)
            for slot in slots { scores[slot] = Float(positions[slot]) }
        }
    }
}
