// IndexMem — cache. Apache-2.0.

import IndexMemKernels

// MARK: - Full cache

/// Keeps every entry (the reference every bounded policy is measured against).
/// Storage is reserved for `capacity` entries up front; pages are only touched, and so only
/// become resident, as entries arrive.
public final class FullLayerCache: LayerCache {
    public let shape: AttentionShape
    public let capacity: Int
    public private(set) var tokensSeen = 0
    public private(set) var count = 0

    /// (kvHeads, capacity, headDimension) f16 bits.
    private let keys: UnsafeMutablePointer<UInt16>
    private let values: UnsafeMutablePointer<UInt16>
    /// (capacity) absolute positions.
    private let positions: UnsafeMutablePointer<Int32>
    /// (threads, capacity) attention scores; (threads, headDimension) rounded query.
    private var scratch: UnsafeMutablePointer<Float>
    private var scratchThreads = 0

    public init(shape: AttentionShape, capacity: Int) {
        self.shape = shape
        self.capacity = capacity
        let n = shape.kvHeads * capacity * shape.headDimension
        keys = .allocate(capacity: n)
        values = .allocate(capacity: n)
        positions = .allocate(capacity: capacity)
        scratch = .allocate(capacity: 1)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        positions.deallocate()
        scratch.deallocate()
    }

    public var bytes: Int { count * shape.kvHeads * shape.headDimension * 2 * 2 }

    public func reset() {
        tokensSeen = 0
        count = 0
    }

    public func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, positions p: UnsafePointer<Int32>, tokens: Int) {
        precondition(count + tokens <= capacity, "full cache capacity \(capacity) exceeded")
        let d = shape.headDimension
        for t in 0..<tokens {
            let slot = count + t
            positions[slot] = p[t]
            for h in 0..<shape.kvHeads {
                let src = (t * shape.kvHeads + h) * d
                let dst = (h * capacity + slot) * d
                Half.convert(k + src, to: keys + dst, count: d)
                Half.convert(v + src, to: values + dst, count: d)
            }
        }
        count += tokens
        tokensSeen += tokens
    }

    public func attend(queries: UnsafePointer<Float>, positions qp: UnsafePointer<Int32>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let d = shape.headDimension, qh = shape.queryHeads, group = shape.groupSize
        // Per thread: scores (count) and the f16-rounded query (d).
        let perThread = count + d
        if perThread * pool.threadCount > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = perThread * pool.threadCount
            scratch = .allocate(capacity: scratchCapacity)
        }
        let window = shape.slidingWindow.map { Int32($0) }
        let scale = shape.scale
        let keys = self.keys, values = self.values, positions = self.positions, count = self.count, capacity = self.capacity
        let scratch = self.scratch
        pool.parallelForWithThread(tokens * qh) { thread, range in
            let scores = scratch + thread * perThread
            let rounded = scores + count
            for item in range {
                let t = item / qh, h = item % qh, g = h / group
                let q = queries + (t * qh + h) * d
                for i in 0..<d { rounded[i] = Half.toFloat(Half.bits(q[i])) }
                AttentionKernel.attendSorted(
                    query: rounded, keys: keys + g * capacity * d, values: values + g * capacity * d,
                    positions: positions, count: count, queryPosition: qp[t], window: window,
                    headDimension: d, scale: scale, scores: scores, output: output + (t * qh + h) * d)
            }
        }
    }

    private var scratchCapacity = 0
}
