// IndexMem — cache tests. Apache-2.0.

import IndexMemCache
import IndexMemKernels
import IndexMemTestSupport

// MARK: - Synthetic streams

/// Random keys, values and queries for one layer, fed block by block.
struct SyntheticStream {
    let shape: AttentionShape
    var rng: SplitMix64
    var position: Int32 = 0

    init(shape: AttentionShape, seed: UInt64) {
        self.shape = shape
        rng = SplitMix64(seed: seed)
    }

    struct Block {
        var keys: [Float]        // (tokens, kvHeads, d)
        var values: [Float]
        var queries: [Float]     // (tokens, queryHeads, d)
        var hidden: [Float]      // (tokens, hiddenDimension)
        var positions: [Int32]
        var tokens: Int { positions.count }
    }

    static let hiddenDimension = 8

    mutating func next(_ tokens: Int, keyScale: Float = 1) -> Block {
        let d = shape.headDimension
        let positions = (0..<tokens).map { position + Int32($0) }
        position += Int32(tokens)
        return Block(keys: rng.floats(tokens * shape.kvHeads * d).map { $0 * keyScale },
                     values: rng.floats(tokens * shape.kvHeads * d),
                     queries: rng.floats(tokens * shape.queryHeads * d),
                     hidden: rng.floats(tokens * Self.hiddenDimension),
                     positions: positions)
    }
}

extension LayerCache {
    /// Appends and attends one block; returns the attention output (tokens, queryHeads, d).
    @discardableResult
    func run(_ block: SyntheticStream.Block, pool: ThreadPool) -> [Float] {
        var output = [Float](repeating: 0, count: block.tokens * shape.queryHeads * shape.headDimension)
        block.keys.withUnsafeBufferPointer { k in
            block.values.withUnsafeBufferPointer { v in
                block.positions.withUnsafeBufferPointer { p in
                    block.hidden.withUnsafeBufferPointer { hs in
                        append(AppendBatch(keys: k.baseAddress!, values: v.baseAddress!, positions: p.baseAddress!, tokens: block.tokens,
                                           unrotatedKeys: k.baseAddress!, hiddenStates: hs.baseAddress!,
                                           hiddenDimension: SyntheticStream.hiddenDimension))
                        block.queries.withUnsafeBufferPointer { q in
                            output.withUnsafeMutableBufferPointer { o in
                                attend(queries: q.baseAddress!, positions: p.baseAddress!, tokens: block.tokens, output: o.baseAddress!, pool: pool)
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

extension KVStorage {
    /// Positions held by a head, sorted.
    func heldPositions(head: Int) -> [Int32] {
        (0..<counts[head]).map { positions(head: head)[$0] }.sorted()
    }
}

/// Records every evicted entry.
final class RecordingReceiver: EvictedEntryReceiver {
    var readoutForm: ReadoutForm { .none }
    var bytes: Int { 0 }
    var received: [(head: Int, position: Int32, key: [Float], value: [Float])] = []
    let headDimension: Int
    init(headDimension: Int) { self.headDimension = headDimension }
    func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        received.append((head, position, Array(UnsafeBufferPointer(start: key, count: headDimension)),
                         Array(UnsafeBufferPointer(start: value, count: headDimension))))
    }
    func reset() { received = [] }
}

/// Keeps every evicted entry exactly and joins them into the softmax: with it, a bounded
/// cache must compute the full cache's attention.
final class ExactMemoryReceiver: EvictedEntryReceiver {
    var readoutForm: ReadoutForm { .softmaxMerge }
    var bytes: Int { entries.reduce(0) { $0 + $1.count } * headDimension * 8 }
    let headDimension: Int
    var entries: [[(key: [Float], value: [Float])]]
    init(kvHeads: Int, headDimension: Int) {
        self.headDimension = headDimension
        entries = Array(repeating: [], count: kvHeads)
    }
    func absorb(head: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int32) {
        entries[head].append((Array(UnsafeBufferPointer(start: key, count: headDimension)),
                              Array(UnsafeBufferPointer(start: value, count: headDimension))))
    }
    func softmaxShare(head: Int, query: UnsafePointer<Float>, scale: Float, position: Int32,
                      numerator: UnsafeMutablePointer<Float>) -> (maxScore: Float, denominator: Double) {
        let list = entries[head]
        guard !list.isEmpty else { return (-.infinity, 0) }
        let d = headDimension
        let q = (0..<d).map { Float(Float16(query[$0])) }
        let scores = list.map { e in zip(q, e.key).reduce(Float(0)) { $0 + $1.0 * $1.1 } * scale }
        let m = scores.max()!
        var denominator = 0.0
        numerator.update(repeating: 0, count: d)
        for (s, e) in zip(scores, list) {
            let w = expf(s - m)
            denominator += Double(w)
            for i in 0..<d { numerator[i] += w * e.value[i] }
        }
        return (m, denominator)
    }
    func reset() { for i in entries.indices { entries[i] = [] } }
}

#if canImport(Glibc)
import Glibc
#endif
