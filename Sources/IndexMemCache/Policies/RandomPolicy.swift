// IndexMem — cache policies. Apache-2.0.
//
// Random eviction: the baseline every policy must beat (kvpress's RandomPress). Each entry
// gets a uniform random score when it enters; the sequence of scores depends only on the
// seed, the layer and the order of entries.
// Signals: none. Cost: O(1) per entry.

import IndexMemKernels

// MARK: - random

public struct RandomPolicy: EvictionPolicy {
    public static let definition = PolicyDefinition(
        name: "random", summary: "uniform random", keeps: "uniform random (the baseline)",
        options: [PolicyOption("seed", .integer(default: 0, range: 0...Int.max), help: "seed of the scores")]
    ) { arguments throws(PolicyError) in ResolvedPolicy(scorer: RandomPolicy(seed: UInt64(try arguments.int("seed")))) }

    public let seed: UInt64
    public init(seed: UInt64 = 0) { self.seed = seed }
    public var spec: String { seed == 0 ? "random" : "random:seed=\(seed)" }
    public var signals: PolicySignals { [] }

    /// Each budgeted layer draws its own stream (a layer outside any budget never evicts by score).
    public func makeScorer(for layer: LayerContext) -> any LayerScorer {
        Scorer(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(layer.budgetedLayer ?? layer.modelLayer) &+ 1)
    }

    final class Scorer: LayerScorer {
        var rng: SplitMix64
        init(seed: UInt64) { rng = SplitMix64(seed: seed) }

        func score(new batch: AppendBatch, head: Int, slots: Range<Int>, storage: KVStorage) {
            let scores = storage.scores(head: head)
            for slot in slots { scores[slot] = rng.float() }
        }
    }
}
