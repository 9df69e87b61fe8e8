// IndexMem — learning. Apache-2.0.
//
// The teacher signal, streamed: a full cache for one budgeted layer that, while the frozen
// model prefills a training sequence block by block (as bounded mode does), records what the
// indexer's losses need and nothing more:
//   * the inputs the indexer sees: each token's normalised layer input and keys before RoPE;
//   * per block and KV head, the attention mass the block's queries pay every entry (summed
//     over the group's query heads): the query-aware indexer's teacher is the mass of the
//     blocks after its own;
//   * per entry and KV head, the largest and the summed attention it receives from queries
//     that come after its own block and more than `window` positions later (the queries that
//     read it once bounded mode may evict it): the write-time indexer's `max` and `mean` targets;
//   * per entry and KV head, the largest attention it receives from the sequence's final request
//     (its question and answer, from `requestStart` on): the `question` target, what a cache
//     must still hold when the question comes.
// Attention runs with the engine's own kernel, so the model's outputs are the full cache's.

import IndexMemCache
import IndexMemKernels

// MARK: - Recording cache

final class TeacherCache: LayerCache {
    let shape: AttentionShape
    let storage: KVStorage
    let capacity: Int
    let hiddenDimension: Int
    /// Queries closer than this to an entry do not count towards its future attention.
    let window: Int
    /// First position of the final request (question and answer) of the sequence.
    let requestStart: Int
    private(set) var tokensSeen = 0

    /// (tokens, hidden) normalised layer inputs and (tokens, kvHeads * headDimension) keys before RoPE.
    private(set) var hidden: [Float] = []
    private(set) var plainKeys: [Float] = []
    /// Per block: (kvHeads, capacity) attention mass paid by the block's queries.
    private(set) var blockMass: [[Float]] = []
    /// First position of each block.
    private(set) var blockStarts: [Int] = []
    /// (threads, kvHeads, capacity) running maxima and sums of future attention.
    private var futureMax: UnsafeMutablePointer<Float>
    private var futureSum: UnsafeMutablePointer<Float>
    private var requestMax: UnsafeMutablePointer<Float>
    private var threadMass: UnsafeMutablePointer<Float>
    private let threads: Int
    private var scratch: UnsafeMutablePointer<Float>
    private let perThread: Int

    init(shape: AttentionShape, capacity: Int, hiddenDimension: Int, window: Int, requestStart: Int, threads: Int) {
        self.shape = shape
        self.capacity = capacity
        self.hiddenDimension = hiddenDimension
        self.window = window
        self.requestStart = requestStart
        self.threads = threads
        storage = KVStorage(kvHeads: shape.kvHeads, headDimension: shape.headDimension, capacity: capacity)
        let n = threads * shape.kvHeads * storage.capacity
        futureMax = .allocate(capacity: n); futureMax.initialize(repeating: 0, count: n)
        futureSum = .allocate(capacity: n); futureSum.initialize(repeating: 0, count: n)
        requestMax = .allocate(capacity: n); requestMax.initialize(repeating: 0, count: n)
        threadMass = .allocate(capacity: n); threadMass.initialize(repeating: 0, count: n)
        // Per thread: probabilities (capacity + 32), group sum (capacity), rounded query and output.
        perThread = 2 * storage.capacity + 32 + 2 * shape.headDimension
        scratch = .allocate(capacity: perThread * threads)
    }

    deinit {
        futureMax.deallocate(); futureSum.deallocate(); requestMax.deallocate(); threadMass.deallocate(); scratch.deallocate()
    }

    var count: Int { storage.counts[0] }
    var bytes: Int { storage.bytes }
    var peakBytes: Int { storage.bytes }
    var signals: PolicySignals { [.hiddenStates, .unrotatedKeys] }

    func append(_ batch: AppendBatch) {
        precondition(count + batch.tokens <= capacity, "teacher capacity \(capacity) exceeded")
        storage.append(batch, kvHeads: shape.kvHeads)
        hidden.append(contentsOf: UnsafeBufferPointer(start: batch.hiddenStates!, count: batch.tokens * batch.hiddenDimension))
        plainKeys.append(contentsOf: UnsafeBufferPointer(start: batch.unrotatedKeys!, count: batch.tokens * shape.kvHeads * shape.headDimension))
        blockStarts.append(tokensSeen)
        tokensSeen += batch.tokens
    }

    func attend(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int,
                output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let d = shape.headDimension, qh = shape.queryHeads, group = shape.groupSize, kvh = shape.kvHeads
        let cap = storage.capacity, scale = shape.scale, storage = self.storage
        let blockStart = Int(qp[0]), window = self.window, requestStart = self.requestStart
        let base = scratch, perThread = self.perThread
        let fMax = futureMax, fSum = futureSum, rMax = requestMax, mass = threadMass
        precondition(pool.threadCount <= threads)
        pool.parallelForWithThread(tokens * kvh) { thread, range in
            let probabilities = base + thread * perThread
            let groupSum = probabilities + cap + 32
            let rounded = groupSum + cap
            for item in range {
                let t = item / kvh, g = item % kvh
                let hi = Int(qp[t]) + 1
                groupSum.update(repeating: 0, count: hi)
                for h in (g * group)..<((g + 1) * group) {
                    AttentionKernel.roundToHalf(queries + (t * qh + h) * d, into: rounded, count: d)
                    AttentionKernel.attend(query: rounded, storage: storage, head: g, lo: 0, hi: hi, scale: scale,
                                           probabilities: probabilities, output: output + (t * qh + h) * d, singleQuery: tokens == 1)
                    VectorMath.add(probabilities, into: groupSum, count: hi)
                }
                let offset = (thread * kvh + g) * cap
                VectorMath.add(groupSum, into: mass + offset, count: hi)
                let later = min(blockStart, hi - 1 - window)
                if later > 0 {
                    let m = fMax + offset, s = fSum + offset
                    for j in 0..<later {
                        let a = groupSum[j]
                        if a > m[j] { m[j] = a }
                        s[j] += a
                    }
                }
                // The final request reads entries before it that bounded mode may have evicted by then.
                let asked = Int(qp[t]) >= requestStart ? min(requestStart, hi - 1 - window) : 0
                if asked > 0 {
                    let m = rMax + offset
                    for j in 0..<asked where groupSum[j] > m[j] { m[j] = groupSum[j] }
                }
            }
        }
        // The block's mass, summed over threads.
        var block = [Float](repeating: 0, count: kvh * tokensSeen)
        for g in 0..<kvh {
            for thread in 0..<threads {
                let src = mass + (thread * kvh + g) * cap
                for j in 0..<tokensSeen { block[g * tokensSeen + j] += src[j]; src[j] = 0 }
            }
        }
        blockMass.append(block)
    }

    /// Per KV head, the largest and the summed future attention of every entry, and how many
    /// queries counted towards each entry.
    func futureAttention() -> (max: [[Float]], sum: [[Float]], queries: [Int], request: [[Float]]) {
        let kvh = shape.kvHeads, cap = storage.capacity, n = tokensSeen
        var maxima = [[Float]](repeating: [Float](repeating: 0, count: n), count: kvh)
        var sums = maxima, requested = maxima
        for g in 0..<kvh {
            for thread in 0..<threads {
                let offset = (thread * kvh + g) * cap
                let m = futureMax + offset, s = futureSum + offset, r = requestMax + offset
                for j in 0..<n {
                    maxima[g][j] = max(maxima[g][j], m[j])
                    sums[g][j] += s[j]
                    requested[g][j] = max(requested[g][j], r[j])
                }
            }
        }
        // Entry j is read by queries t >= max(start of the block after j's, j + window + 1).
        var queries = [Int](repeating: 0, count: n)
        for j in 0..<n {
            let nextBlock = blockStarts.first { $0 > j } ?? n
            queries[j] = max(0, n - max(nextBlock, j + window + 1))
        }
        return (maxima, sums, queries, requested)
    }

    func checkpoint() -> CacheCheckpoint { preconditionFailure("the teacher cache does not roll back") }
    func rollback(to checkpoint: CacheCheckpoint) { preconditionFailure("the teacher cache does not roll back") }
    func reset() { preconditionFailure("make a new teacher cache per sequence") }
}
