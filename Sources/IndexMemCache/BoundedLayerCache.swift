// IndexMem — cache. Apache-2.0.
//
// A layer cache that never holds more than `budget` entries per KV head after each block
// (plus the block itself while it is attended), or, in prefill-then-compress mode, that
// keeps everything until `compress()` and evicts down to the budget once.
//
// Slot order: the block being attended always occupies the last slots of each head, in
// position order, and every older entry has a lower position. Evicting a block's worth keeps
// the order; evicting one entry while decoding fills its slot with the last entry, so older
// entries may end up in any order. Causality is "slots before the block, plus the block up to
// the query", and sliding windows mask by position. A cache that never evicts computes
// exactly what `FullLayerCache` computes.

import Foundation
import IndexMemKernels

// MARK: - Bounded cache

public final class BoundedLayerCache: LayerCache {
    /// When entries are evicted.
    public enum EvictionTiming: Sendable, Equatable {
        /// After every appended block has been attended (bounded prefill and decoding).
        case afterEveryBlock
        /// Only when `compress()` is called (kvpress's prefill-then-compress protocol).
        case onCompress
    }

    public let shape: AttentionShape
    /// Where the layer sits (its scorer and receiver were made for it).
    public let layer: LayerContext
    public let storage: KVStorage
    /// Entries kept per KV head.
    public let budget: Int
    public let policy: any EvictionPolicy
    public let scorer: any LayerScorer
    public let receiver: any EvictedEntryReceiver
    public let selector: BudgetSelector
    public let timing: EvictionTiming
    /// Entries are evicted in multiples of this many (1: exactly down to the budget).
    public let evictionQuantum: Int
    public private(set) var tokensSeen = 0
    public private(set) var peakBytes = 0
    public private(set) var evictions = 0

    private var pending: AppendBatch?
    private var newestPosition: Int32 = -1
    private var scratch = AttentionScratch()
    /// (threads, kvHeads, capacity) attention received per slot, when the policy reads attention.
    private var attentionSums: UnsafeMutablePointer<Float>?
    private var attentionThreads = 0
    private let selection: UnsafeMutablePointer<Int>
    private let evicted: UnsafeMutablePointer<Int>
    private let entryKey: UnsafeMutablePointer<Float>
    private let entryValue: UnsafeMutablePointer<Float>

    /// - Parameters:
    ///   - layer: where the layer sits; its `shape` is the cache's.
    ///   - budget: entries kept per KV head (at least `selector.sinks + selector.window`).
    ///   - capacity: most entries held at once; `budget + chunk` for `.afterEveryBlock`, the
    ///     longest sequence for `.onCompress`.
    ///   - receiver: takes every evicted entry (made for the same `layer`).
    ///   - entryType: how keys and values are stored.
    public init(layer: LayerContext, budget: Int, capacity: Int, selector: BudgetSelector,
                policy: any EvictionPolicy, receiver: any EvictedEntryReceiver = DiscardingReceiver(),
                timing: EvictionTiming = .afterEveryBlock, evictionQuantum: Int = 1, entryType: KVEntryType = .f16) {
        let shape = layer.shape
        self.shape = shape
        self.layer = layer
        self.evictionQuantum = max(1, evictionQuantum)
        self.budget = budget
        self.policy = policy
        self.receiver = receiver
        self.selector = selector
        self.timing = timing
        storage = KVStorage(kvHeads: shape.kvHeads, headDimension: shape.headDimension, capacity: capacity,
                            sideDimension: policy.sideDimension, entryType: entryType)
        scorer = policy.makeScorer(for: layer)
        selection = .allocate(capacity: storage.capacity)
        evicted = .allocate(capacity: storage.capacity)
        entryKey = .allocate(capacity: shape.headDimension)
        entryValue = .allocate(capacity: shape.headDimension)
    }

    deinit {
        attentionSums?.deallocate()
        selection.deallocate()
        evicted.deallocate()
        entryKey.deallocate()
        entryValue.deallocate()
    }

    public var count: Int { storage.counts.max() ?? 0 }
    public var bytes: Int { storage.bytes }
    public var policyBytes: Int { storage.counts.reduce(0, +) * storage.policyBytesPerEntry }
    public var receiverBytes: Int { receiver.bytes }
    public var signals: PolicySignals { policy.signals }

    public func reset() {
        storage.removeAll()
        receiver.reset()
        tokensSeen = 0
        peakBytes = 0
        evictions = 0
        newestPosition = -1
        pending = nil
    }

    // MARK: Append

    public func append(_ batch: AppendBatch) {
        let first = storage.counts
        precondition(storage.counts.allSatisfy { $0 + batch.tokens <= storage.capacity },
                     "bounded cache capacity \(storage.capacity) exceeded (budget \(budget))")
        storage.append(batch, kvHeads: shape.kvHeads)
        for h in 0..<shape.kvHeads {
            scorer.score(new: batch, head: h, slots: first[h]..<(first[h] + batch.tokens), storage: storage)
        }
        if batch.tokens > 0 { newestPosition = batch.positions[batch.tokens - 1] }
        pending = batch
        tokensSeen += batch.tokens
        peakBytes = max(peakBytes, bytes)
    }

    // MARK: Attend

    public func attend(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int,
                       output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let d = shape.headDimension, qh = shape.queryHeads, group = shape.groupSize, kvh = shape.kvHeads
        let capacity = storage.capacity
        scratch.reserve(perThread: capacity + 32 + 2 * d, threads: pool.threadCount)
        let base = scratch.buffer!, perThread = scratch.perThread
        let wantsAttention = policy.signals.contains(.attention)
        let attentionFrom = tokens - min(tokens, max(policy.attentionQueries, 0))
        if wantsAttention { prepareAttentionSums(threads: pool.threadCount) }
        let sums = attentionSums
        let window = shape.slidingWindow
        let scale = shape.scale
        let counts = storage.counts
        let storage = self.storage, receiver = self.receiver
        let form = receiver.readoutForm
        pool.parallelForWithThread(tokens * qh) { thread, range in
            let probabilities = base + thread * perThread
            let rounded = probabilities + capacity + 32
            let numerator = rounded + d
            for item in range {
                let t = item / qh, h = item % qh, g = h / group
                let hi = counts[g] - tokens + t + 1
                let q = queries + (t * qh + h) * d
                let out = output + (t * qh + h) * d
                let (m, sum) = AttentionKernel.attendEntries(
                    query: q, queryScratch: rounded, storage: storage, head: g, lo: 0, hi: hi, scale: scale,
                    probabilities: probabilities, output: out, singleQuery: tokens == 1,
                    windowStart: window.map { qp[t] - Int32($0) + 1 })
                if wantsAttention && t >= attentionFrom, let sums {
                    VectorMath.add(probabilities, into: sums + (thread * kvh + g) * capacity, count: hi)
                }
                switch form {
                case .none: break
                case .residual: receiver.addReadout(head: g, query: q, scale: scale, position: qp[t], kept: (m, sum), output: out)
                case .softmaxMerge:
                    let share = receiver.softmaxShare(head: g, query: q, scale: scale, position: qp[t], numerator: numerator)
                    Self.merge(output: out, keptMax: m, keptSum: sum, share: share, numerator: numerator, count: d)
                }
            }
        }
        if wantsAttention, let sums {
            for g in 0..<kvh {
                let total = sums + g * capacity
                for thread in 1..<attentionThreads {
                    VectorMath.add(sums + (thread * kvh + g) * capacity, into: total, count: counts[g])
                }
                scorer.refresh(head: g, attention: total, queries: tokens - attentionFrom, storage: storage)
            }
        }
        if let block = pending {
            for g in 0..<kvh { scorer.refresh(block: block, head: g, storage: storage) }
            pending = nil
        }
        if timing == .afterEveryBlock { evict(downTo: budget) }
    }

    /// Kept entries' softmax output merged with a receiver's share (both relative to their own maxima).
    static func merge(output: UnsafeMutablePointer<Float>, keptMax: Float, keptSum: Double,
                      share: (maxScore: Float, denominator: Double), numerator: UnsafePointer<Float>, count d: Int) {
        guard share.denominator > 0 else { return }
        let top = max(keptMax, share.maxScore)
        let keptWeight = keptSum > 0 ? keptSum * Double(expf(keptMax - top)) : 0
        let shareScale = Double(expf(share.maxScore - top))
        let denominator = keptWeight + share.denominator * shareScale
        let a = Float(keptWeight / denominator), b = Float(shareScale / denominator)
        for i in 0..<d { output[i] = output[i] * a + numerator[i] * b }
    }

    private func prepareAttentionSums(threads: Int) {
        let per = shape.kvHeads * storage.capacity
        if attentionSums == nil || attentionThreads < threads {
            attentionSums?.deallocate()
            attentionSums = .allocate(capacity: per * threads)
            attentionThreads = threads
        }
        attentionSums!.update(repeating: 0, count: per * attentionThreads)
    }

    // MARK: Evict

    public func compress() { evict(downTo: budget) }

    public func compress(toBudget limit: Int) { evict(downTo: limit) }

    public func checkpoint() -> CacheCheckpoint {
        // Evicting after every block may drop entries held now: keep a copy of them all.
        // Side vectors (a learned scorer's state) change as later blocks arrive: copy them too.
        let entries: CacheCheckpoint.Entries = timing == .afterEveryBlock || storage.sideDimension > 0
            ? .copy(storage.snapshot())
            : .prefix(counts: storage.counts,
                      scores: (0..<shape.kvHeads).map { Array(UnsafeBufferPointer(start: storage.scores(head: $0), count: storage.counts[$0])) })
        return CacheCheckpoint(entries: entries, tokensSeen: tokensSeen, newestPosition: newestPosition, peakBytes: peakBytes, evictions: evictions)
    }

    public func rollback(to checkpoint: CacheCheckpoint) {
        switch checkpoint.entries {
        case .copy(let snapshot):
            storage.restore(snapshot)
        case .prefix(let counts, let scores):
            for h in 0..<shape.kvHeads {
                storage.truncate(head: h, to: counts[h])
                scores[h].withUnsafeBufferPointer { if let b = $0.baseAddress { storage.scores(head: h).update(from: b, count: $0.count) } }
            }
        }
        evictions = checkpoint.evictions
        tokensSeen = checkpoint.tokensSeen
        newestPosition = checkpoint.newestPosition
        peakBytes = checkpoint.peakBytes
        pending = nil
    }

    /// Evicts every head down to `limit` entries (or, with a quantum, to the fewest above it
    /// that leave a multiple of the quantum evicted), handing each evicted entry to the receiver.
    private func evict(downTo limit: Int) {
        for g in 0..<shape.kvHeads where storage.counts[g] > limit {
            let excess = storage.counts[g] - limit
            let keep = storage.counts[g] - excess / evictionQuantum * evictionQuantum
            guard keep < storage.counts[g] else { continue }
            let n = selector.select(count: storage.counts[g], budget: keep, newest: newestPosition,
                                    positions: storage.positions(head: g), scores: storage.scores(head: g),
                                    scratch: selection, evict: evicted)
            guard n > 0 else { continue }
            if !(receiver is DiscardingReceiver) {
                for i in 0..<n {
                    storage.read(head: g, slot: evicted[i], key: entryKey, value: entryValue)
                    receiver.absorb(head: g, key: entryKey, value: entryValue, position: storage.positions(head: g)[evicted[i]])
                }
            }
            storage.remove(head: g, sortedSlots: UnsafeBufferPointer(start: evicted, count: n))
            evictions += n
        }
    }
}

// MARK: - Sliding-window layers

extension BoundedLayerCache {
    /// Sliding-window caches evict this many entries at a time.
    public static let slidingEvictionQuantum = 32

    /// The cache of a sliding-window layer (Gemma 3's local layers, Mistral). It keeps the
    /// newest `window` entries, all that the layer's next queries can still see (a query at
    /// position p sees positions above p - window), plus up to 31 older ones and one block while it is attended: like llama.cpp's SWA cache, its
    /// memory does not grow with the context. Its attention masks by position.
    ///
    /// Why 32 at a time: evicting a multiple of 32 oldest entries keeps the slots in position
    /// order and each slot congruent to its position mod 32, so the one-token kernel's
    /// accumulators (slot / 8 mod 4, lane slot mod 8) add the same products in the same order
    /// as llama.cpp's full-size SWA cache (its default), where a cell is a position. Evicting
    /// one entry per decoded token would fill the hole with the newest entry and reorder the
    /// sums; at 16K tokens Gemma 3's decoding logits then drift by ~0.4 from llama.cpp's (as
    /// llama.cpp's own ring-buffer SWA cache, `swa_full = false`, drifts from its default).
    /// - Parameters:
    ///   - layer: the layer (no budget applies to it: `budgetedLayer` is nil).
    ///   - window: the layer's window (`shape.slidingWindow`).
    ///   - chunk: the largest block appended at once.
    ///   - entryType: how keys and values are stored.
    public static func slidingWindow(layer: LayerContext, window: Int, chunk: Int, entryType: KVEntryType = .f16) -> BoundedLayerCache {
        BoundedLayerCache(layer: layer, budget: window,
                          capacity: slidingCapacity(window: window, chunk: chunk), selector: BudgetSelector(sinks: 0, window: 0),
                          policy: WindowPolicy(), evictionQuantum: slidingEvictionQuantum, entryType: entryType)
    }

    /// The most entries a sliding-window cache holds: the window, up to a quantum less one of
    /// older entries, and one block while it is attended.
    public static func slidingCapacity(window: Int, chunk: Int) -> Int { window + slidingEvictionQuantum - 1 + chunk }
}
