// IndexMem — cache tests. Apache-2.0.
//
// The learned scorers' own arithmetic, on hand-made parameters: the write-time score is the
// linear function of the entry's features, pooling gives each entry the largest raw score
// within `pool` positions (also after decoding reorders slots), the query-aware score follows
// its definition, and a policy without parameters cannot make a scorer by accident.

import IndexMemCache
import IndexMemKernels
import Testing

@Suite("Learned indexer scorers")
struct IndexerPolicyTests {
    /// Hidden dimension 4, one KV head of dimension 2; the static score is hidden[0] + 0.5.
    static func parameters() -> IndexerParameters {
        var p = IndexerParameters(hiddenDimension: 4, kvHeads: 1, headDimension: 2, indexerHeads: 1, keyDimension: 2)
        p.staticWeights = [[1, 0, 0, 0, 0, 0, 0.5]]
        // Query-aware: key = (h0, h1), query = (h2, h3), head weight = 1 * h0.
        p.keyProjection = [[1, 0, 0, 0, 0, 1, 0, 0]]
        p.queryProjection = [[0, 0, 1, 0, 0, 0, 0, 1]]
        p.headWeights = [[1, 0, 0, 0]]
        return p
    }

    /// Appends tokens with the given hidden states (4 floats each) at consecutive positions.
    static func append(_ hidden: [[Float]], from position: Int32, scorer: any LayerScorer, storage: KVStorage) {
        let n = hidden.count
        let flat = hidden.flatMap { $0 }
        let zeros = [Float](repeating: 0, count: n * 2)
        let positions = (0..<n).map { position + Int32($0) }
        flat.withUnsafeBufferPointer { h in
            zeros.withUnsafeBufferPointer { z in
                positions.withUnsafeBufferPointer { p in
                    let batch = AppendBatch(keys: z.baseAddress!, values: z.baseAddress!, positions: p.baseAddress!, tokens: n,
                                            unrotatedKeys: z.baseAddress!, hiddenStates: h.baseAddress!, hiddenDimension: 4)
                    let first = storage.counts[0]
                    storage.append(batch, kvHeads: 1)
                    scorer.score(new: batch, head: 0, slots: first..<(first + n), storage: storage)
                    scorer.refresh(block: batch, head: 0, storage: storage)
                }
            }
        }
    }

    static func scores(_ storage: KVStorage) -> [Float] { Array(UnsafeBufferPointer(start: storage.scores(head: 0), count: storage.counts[0])) }

    static let shape = AttentionShape(queryHeads: 1, kvHeads: 1, headDimension: 2, scale: 1)

    @Test("write-time score is the fitted linear function; pooling spreads a peak to its neighbours")
    func writeTimeAndPooling() {
        let raw: [Float] = [0, 0, 0, 5, 0, 0, 0, 0, -1, 0]
        for pool in [0, 2] {
            let policy = IndexerPolicy(parameters: Self.parameters(), variant: .writeTime, pool: pool)
            let storage = KVStorage(kvHeads: 1, headDimension: 2, capacity: 32, sideDimension: policy.sideDimension)
            let scorer = policy.makeScorer(for: .standalone(Self.shape))
            Self.append(raw.map { [$0, 0, 0, 0] }, from: 0, scorer: scorer, storage: storage)
            let expected: [Float] = raw.indices.map { j in
                (max(0, j - pool)...min(raw.count - 1, j + pool)).map { raw[$0] + 0.5 }.max()!
            }
            #expect(Self.scores(storage) == expected, "pool \(pool)")
        }
    }

    @Test("pooling follows positions, not slots, after decoding filled a hole")
    func poolingByPosition() {
        let policy = IndexerPolicy(parameters: Self.parameters(), variant: .writeTime, pool: 1)
        let storage = KVStorage(kvHeads: 1, headDimension: 2, capacity: 32, sideDimension: policy.sideDimension)
        let scorer = policy.makeScorer(for: .standalone(Self.shape))
        Self.append([[0], [9], [0], [0], [0]].map { $0 + [0, 0, 0] }, from: 0, scorer: scorer, storage: storage)
        // Evict position 3 (slot 3): the last entry (position 4) moves into slot 3.
        [3].withUnsafeBufferPointer { storage.remove(head: 0, sortedSlots: $0) }
        Self.append([[0, 0, 0, 0]], from: 5, scorer: scorer, storage: storage)
        let positions = Array(UnsafeBufferPointer(start: storage.positions(head: 0), count: storage.counts[0]))
        #expect(positions == [0, 1, 2, 4, 5])
        // Position 0 and 2 neighbour the peak at 1; 4 neighbours 5 (and 3 is gone).
        #expect(Self.scores(storage) == [9.5, 9.5, 9.5, 0.5, 0.5])
    }

    @Test("query-aware score: mean over the block of w ReLU(q . k), first score its own block's, then a moving average")
    func queryAware() {
        let rate = 0.25
        let policy = IndexerPolicy(parameters: Self.parameters(), variant: .queryAware, rate: rate)
        let storage = KVStorage(kvHeads: 1, headDimension: 2, capacity: 32, sideDimension: policy.sideDimension)
        let scorer = policy.makeScorer(for: .standalone(Self.shape))
        // Entry keys (h0, h1); queries (h2, h3) with weight h0.
        let first: [[Float]] = [[1, 0, 2, 0], [0, 1, 0, 0]]
        Self.append(first, from: 0, scorer: scorer, storage: storage)
        // Block of 2 queries: t0 (w 1, q (2,0)), t1 (w 0). Entry 0 key (1,0): (1*2 + 0)/2 = 1; entry 1 key (0,1): 0.
        #expect(Self.scores(storage) == [1, 0])
        Self.append([[2, 0, 0, 3]], from: 2, scorer: scorer, storage: storage)
        // Query (0,3), w 2: entry 0 -> 0, entry 1 -> 2*3 = 6, entry 2 key (2,0) -> 0 (its first score).
        let alpha = Float(1 - (1 - rate))
        #expect(Self.scores(storage) == [(1 - alpha) * 1, alpha * 6, 0])
    }

    @Test("a learned policy reports why it cannot run")
    func incompatibility() throws {
        let unbound = IndexerPolicy(parameters: nil, variant: .queryAware)
        #expect(unbound.incompatibility(budgetedLayers: 1, hiddenDimension: 4, shape: Self.shape) != nil)
        let bound = IndexerPolicy(parameters: Self.parameters(), variant: .queryAware)
        #expect(bound.incompatibility(budgetedLayers: 1, hiddenDimension: 4, shape: Self.shape) == nil)
        #expect(bound.incompatibility(budgetedLayers: 2, hiddenDimension: 4, shape: Self.shape) != nil)
        #expect(bound.incompatibility(budgetedLayers: 1, hiddenDimension: 8, shape: Self.shape) != nil)
        var staticOnly = Self.parameters()
        staticOnly.keyProjection = []
        #expect(IndexerPolicy(parameters: staticOnly, variant: .queryAware)
            .incompatibility(budgetedLayers: 1, hiddenDimension: 4, shape: Self.shape)?.contains("no query indexer") == true)
        #expect(IndexerPolicy(parameters: Self.parameters(), variant: .writeTime, pool: 3).spec == "indexmem-static:pool=3")
        #expect(try PolicyRegistry.resolve("indexmem-query:rate=0.5,pool=2").spec == "indexmem-query:pool=2,rate=0.5")
    }
}
