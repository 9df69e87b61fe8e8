// IndexMem — cache. Apache-2.0.

import IndexMemKernels

// MARK: - Full cache

/// Keeps every entry (the reference every bounded policy is measured against).
/// Storage is reserved for `capacity` entries up front; pages only become resident as
/// entries arrive.
public final class FullLayerCache: LayerCache {
    public let shape: AttentionShape
    public let storage: KVStorage
    public private(set) var tokensSeen = 0
    private var scratch = AttentionScratch()

    /// - Parameter entryType: how keys and values are stored.
    public init(shape: AttentionShape, capacity: Int, entryType: KVEntryType = .f16) {
        self.shape = shape
        storage = KVStorage(kvHeads: shape.kvHeads, headDimension: shape.headDimension, capacity: capacity, entryType: entryType)
    }

    public var count: Int { storage.counts[0] }
    public var capacity: Int { storage.capacity }
    public var bytes: Int { storage.bytes }
    public var peakBytes: Int { storage.bytes }

    public func checkpoint() -> CacheCheckpoint {
        CacheCheckpoint(entries: .prefix(counts: storage.counts, scores: []), tokensSeen: tokensSeen)
    }

    public func rollback(to checkpoint: CacheCheckpoint) {
        switch checkpoint.entries {
        case .prefix(let counts, _): for h in 0..<shape.kvHeads { storage.truncate(head: h, to: counts[h]) }
        case .copy(let snapshot): storage.restore(snapshot)
        }
        tokensSeen = checkpoint.tokensSeen
    }

    public func reset() {
        tokensSeen = 0
        storage.removeAll()
    }

    public func append(_ batch: AppendBatch) {
        precondition(count + batch.tokens <= storage.capacity, "full cache capacity \(storage.capacity) exceeded")
        storage.append(batch, kvHeads: shape.kvHeads)
        tokensSeen += batch.tokens
    }

    public func attend(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        AttentionScratch.attendAll(queries: queries, positions: qp, tokens: tokens, output: output, shape: shape,
                                   storage: storage, scratch: &scratch, pool: pool)
    }
}

// MARK: - Shared attention loop

/// Per-thread scratch for attention (probabilities and the rounded query), grown on demand.
struct AttentionScratch {
    private(set) var buffer: UnsafeMutablePointer<Float>? = nil
    private(set) var perThread = 0
    private(set) var threads = 0

    mutating func reserve(perThread n: Int, threads t: Int) {
        if n <= perThread && t <= threads { return }
        buffer?.deallocate()
        perThread = max(n, perThread)
        threads = max(t, threads)
        buffer = .allocate(capacity: perThread * threads)
    }

    /// Causal (and sliding-window) attention of every query head of `tokens` queries over
    /// `storage`, split across the pool by (token, head).
    static func attendAll(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int,
                          output: UnsafeMutablePointer<Float>, shape: AttentionShape, storage: KVStorage,
                          scratch: inout AttentionScratch, pool: ThreadPool) {
        let d = shape.headDimension, qh = shape.queryHeads, group = shape.groupSize
        scratch.reserve(perThread: storage.capacity + 32 + d, threads: pool.threadCount)
        let base = scratch.buffer!, perThread = scratch.perThread
        let window = shape.slidingWindow.map { Int32($0) }
        let scale = shape.scale
        let counts = storage.counts
        pool.parallelForWithThread(tokens * qh) { thread, range in
            let probabilities = base + thread * perThread
            let rounded = probabilities + storage.capacity + 32
            for item in range {
                let t = item / qh, h = item % qh, g = h / group
                let positions = storage.positions(head: g)
                let hi = AttentionKernel.upperBound(positions, counts[g], qp[t])
                let lo = window.map { AttentionKernel.upperBound(positions, hi, qp[t] - $0) } ?? 0
                AttentionKernel.attendEntries(query: queries + (t * qh + h) * d, queryScratch: rounded, storage: storage, head: g,
                                              lo: lo, hi: hi, scale: scale, probabilities: probabilities,
                                              output: output + (t * qh + h) * d, singleQuery: tokens == 1)
            }
        }
    }
}
