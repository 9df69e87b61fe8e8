// IndexMem — learning. Apache-2.0.
//
// The latent memory's teacher signal, layer-local. The frozen model runs with a full cache
// (its outputs are the teacher's, o_full). Beside it, each budgeted layer simulates bounded
// mode for a few policies ("shadows"): every shadow is a bounded cache fed the same keys and
// values, evicting into a memory that only absorbs. Before a shadow evicts after a block, a
// sample of the block's queries is read the way inference would read them: attention over
// the shadow's kept entries (o_kept, log Z_kept) and the memory's moment estimates. Each
// sampled query is kept as the eight numbers the gate's loss needs (`MemorySample`).
//
// `KeyMomentCache` is the first pass: a full cache that sums each KV head's keys and their
// outer products, for the memory's key subspace (principal directions).

import Foundation
import IndexMemCache
import IndexMemKernels

// MARK: - Key moments

final class KeyMomentCache: LayerCache {
    let full: FullLayerCache
    var shape: AttentionShape { full.shape }
    /// Per KV head: key count, sum (d) and sum of outer products (d x d).
    private(set) var count = 0
    private(set) var sums: [[Double]]
    private(set) var products: [[Double]]

    init(shape: AttentionShape, capacity: Int) {
        full = FullLayerCache(shape: shape, capacity: capacity)
        let d = shape.headDimension
        sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: shape.kvHeads)
        products = [[Double]](repeating: [Double](repeating: 0, count: d * d), count: shape.kvHeads)
    }

    var tokensSeen: Int { full.tokensSeen }
    var bytes: Int { full.bytes }
    var peakBytes: Int { full.peakBytes }

    func append(_ batch: AppendBatch) {
        full.append(batch)
        let d = shape.headDimension, h = shape.kvHeads
        for t in 0..<batch.tokens {
            for g in 0..<h {
                let k = batch.keys + (t * h + g) * d
                sums[g].withUnsafeMutableBufferPointer { s in
                    products[g].withUnsafeMutableBufferPointer { p in
                        for i in 0..<d {
                            let ki = Double(k[i])
                            s[i] += ki
                            for j in i..<d { p[i * d + j] += ki * Double(k[j]) }
                        }
                    }
                }
            }
        }
        count += batch.tokens
    }

    func attend(queries: UnsafePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        full.attend(queries: queries, positions: positions, tokens: tokens, output: output, pool: pool)
    }

    /// Per KV head, the covariance (d x d, symmetric) of the keys seen.
    func covariances() -> [[Double]] {
        let d = shape.headDimension, n = Double(max(count, 1))
        return (0..<shape.kvHeads).map { g in
            var c = [Double](repeating: 0, count: d * d)
            for i in 0..<d {
                for j in i..<d {
                    let v = products[g][i * d + j] / n - sums[g][i] / n * sums[g][j] / n
                    c[i * d + j] = v
                    c[j * d + i] = v
                }
            }
            return c
        }
    }

    func checkpoint() -> CacheCheckpoint { preconditionFailure("the teacher cache does not roll back") }
    func rollback(to checkpoint: CacheCheckpoint) { preconditionFailure("the teacher cache does not roll back") }
    func reset() { preconditionFailure("make a new teacher cache per sequence") }
}

// MARK: - Residual samples

final class MemoryTeacherCache: LayerCache {
    /// A bounded cache whose receiver is a `LatentMemory` that only absorbs.
    struct Shadow {
        let cache: BoundedLayerCache
        let memory: LatentMemory

        init(cache: BoundedLayerCache) {
            guard let memory = cache.receiver as? LatentMemory else { preconditionFailure("a shadow evicts into a latent memory") }
            self.cache = cache
            self.memory = memory
        }
    }

    let full: FullLayerCache
    let shadows: [Shadow]
    /// Every `stride`-th query position is sampled.
    let stride: Int
    /// [shadow][kvHead] samples.
    private(set) var samples: [[[MemorySample]]]
    private let threads: Int
    private let perThread: Int
    private let scratch: UnsafeMutablePointer<Float>
    private var output: [Float] = []

    init(layer: LayerContext, capacity: Int, shadows: [Shadow], stride: Int, threads: Int) {
        full = FullLayerCache(shape: layer.shape, capacity: capacity)
        self.shadows = shadows
        self.stride = max(1, stride)
        self.threads = threads
        samples = shadows.map { _ in [[MemorySample]](repeating: [], count: layer.shape.kvHeads) }
        let largest = shadows.map { $0.cache.storage.capacity }.max() ?? 0
        // Per thread: probabilities (capacity + 32), rounded query, kept output, mean, covariance.
        perThread = largest + 32 + 4 * layer.shape.headDimension
        scratch = .allocate(capacity: perThread * threads)
    }

    deinit { scratch.deallocate() }

    var shape: AttentionShape { full.shape }
    var tokensSeen: Int { full.tokensSeen }
    var count: Int { full.count }
    var bytes: Int { full.bytes }
    var peakBytes: Int { full.peakBytes }
    var signals: PolicySignals { shadows.reduce(into: PolicySignals()) { $0.formUnion($1.cache.signals) } }

    func append(_ batch: AppendBatch) {
        full.append(batch)
        for s in shadows { s.cache.append(batch) }
    }

    func attend(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        full.attend(queries: queries, positions: qp, tokens: tokens, output: output, pool: pool)
        let n = tokens * shape.queryHeads * shape.headDimension
        if self.output.count < n { self.output = [Float](repeating: 0, count: n) }
        for (index, shadow) in shadows.enumerated() {
            sample(shadow: index, queries: queries, positions: qp, tokens: tokens, teacher: output, pool: pool)
            self.output.withUnsafeMutableBufferPointer { scratchOutput in
                shadow.cache.attend(queries: queries, positions: qp, tokens: tokens, output: scratchOutput.baseAddress!, pool: pool)
            }
        }
    }

    /// Reads the sampled queries of the block through the shadow's kept entries and memory.
    private func sample(shadow index: Int, queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int,
                        teacher: UnsafePointer<Float>, pool: ThreadPool) {
        let shadow = shadows[index]
        let memory = shadow.memory
        guard (0..<shape.kvHeads).contains(where: memory.holdsEntries(head:)) else { return }
        let d = shape.headDimension, qh = shape.queryHeads, group = shape.groupSize, scale = shape.scale
        let picked = (0..<tokens).filter { Int(qp[$0]) % stride == 0 }
        guard !picked.isEmpty else { return }
        let storage = shadow.cache.storage, counts = storage.counts
        let base = scratch, perThread = self.perThread
        precondition(pool.threadCount <= threads)
        var found = [[(Int, MemorySample)]](repeating: [], count: pool.threadCount)
        found.withUnsafeMutableBufferPointer { perThreadFound in
            pool.parallelForWithThread(picked.count * qh) { thread, range in
                let probabilities = base + thread * perThread
                let rounded = probabilities + (perThread - 4 * d), kept = rounded + d, mean = kept + d, covariance = mean + d
                for item in range {
                    let t = picked[item / qh], h = item % qh, g = h / group
                    guard memory.holdsEntries(head: g) else { continue }
                    let q = queries + (t * qh + h) * d
                    AttentionKernel.roundToHalf(q, into: rounded, count: d)
                    let (m, sum) = AttentionKernel.attend(query: rounded, storage: storage, head: g, lo: 0, hi: counts[g] - tokens + t + 1,
                                                          scale: scale, probabilities: probabilities, output: kept, singleQuery: tokens == 1)
                    guard sum > 0, let (meanTerm, spread) = memory.estimate(head: g, query: q, scale: scale, mean: mean, covariance: covariance)
                    else { continue }
                    let o = teacher + (t * qh + h) * d
                    var ru: Float = 0, rw: Float = 0, uu: Float = 0, uw: Float = 0, ww: Float = 0, rr: Float = 0
                    for i in 0..<d {
                        let r = o[i] - kept[i], u = mean[i] - kept[i], w = covariance[i]
                        ru += r * u; rw += r * w; uu += u * u; uw += u * w; ww += w * w; rr += r * r
                    }
                    let x1 = meanTerm - (m + Float(log(sum)))
                    perThreadFound[thread].append((g, MemorySample(x1: x1, x2: spread, ru: ru, rw: rw, uu: uu, uw: uw, ww: ww, rr: rr)))
                }
            }
        }
        for list in found { for (g, s) in list { samples[index][g].append(s) } }
    }

    func checkpoint() -> CacheCheckpoint { preconditionFailure("the teacher cache does not roll back") }
    func rollback(to checkpoint: CacheCheckpoint) { preconditionFailure("the teacher cache does not roll back") }
    func reset() { preconditionFailure("make a new teacher cache per sequence") }
}
