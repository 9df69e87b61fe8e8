// IndexMem — kernels. Apache-2.0.
//
// A forward pass runs a few hundred short parallel regions per token (every matrix
// product, every attention layer), each tens of microseconds long. Waking threads through
// the OS for each would cost as much as the work, so workers spin briefly on an atomic
// generation counter and only then sleep on a condition variable.

import Foundation
import Synchronization

// MARK: - Thread pool

/// A fixed set of threads that run one body on every thread at once (`run`), or split a
/// range across threads (`parallelFor`). The calling thread is worker 0.
public final class ThreadPool: @unchecked Sendable {
    /// Number of threads that share the work, the caller included.
    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// Workers that have returned from their loop (deinit waits for all of them).
    private let exited = Atomic<Int>(0)
    private let condition = NSCondition()
    private var body: ((Int) -> Void)?
    private var threads: [Thread] = []
    private let busy = Mutex<Bool>(false)

    /// - Parameter threadCount: threads to use (at least 1); defaults to the active cores.
    public init(threadCount: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.threadCount = max(1, threadCount)
        for index in 1..<self.threadCount {
            // unowned(unsafe): a worker still reads the pool while deinit (which waits for it)
            // runs, when a checked unowned reference would trap.
            let thread = Thread { [unowned(unsafe) self] in
                self.workerLoop(index: index)
                self.exited.add(1, ordering: .releasing)
            }
            thread.stackSize = 1 << 20
            thread.start()
            threads.append(thread)
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        condition.lock()
        generation.add(1, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
        while pending.load(ordering: .acquiring) > 0 {}
        while exited.load(ordering: .acquiring) < threadCount - 1 { sched_yield() }
    }

    /// Runs `body(threadIndex)` on every thread, `threadIndex` in `0..<threadCount`, and
    /// returns when all have finished. Calls from several threads at once are serialised.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        busy.withLock { _ in
            withoutActuallyEscaping(body) { escaping in
                self.body = escaping
                pending.store(threadCount - 1, ordering: .releasing)
                // Publish the new generation, then look for sleepers; a worker registers as a
                // sleeper, then looks at the generation. With both pairs sequentially
                // consistent, either this call sees the sleeper (and wakes it under the lock
                // it waits with) or the worker sees the new generation: no lost wake-up.
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    condition.lock()
                    condition.broadcast()
                    condition.unlock()
                }
                escaping(0)
                var spins = 0
                while pending.load(ordering: .acquiring) > 0 {
                    spins += 1
                    if spins & 1023 == 0 { sched_yield() } else { spinPause() }
                }
                self.body = nil
            }
        }
    }

    /// Splits `0..<count` into one contiguous chunk per thread and runs `body` on each.
    public func parallelFor(_ count: Int, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let n = min(threadCount, count)
        if n == 1 { body(0..<count); return }
        run { t in
            guard t < n else { return }
            let lo = count * t / n, hi = count * (t + 1) / n
            if lo < hi { body(lo..<hi) }
        }
    }

    // MARK: Worker

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 100_000 {
                    if spins & 1023 == 0 { sched_yield() } else { spinPause() }
                    continue
                }
                condition.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                sleepers.subtract(1, ordering: .releasing)
                condition.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            body?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}

@inline(__always)
func spinPause() {
    // A few cycles of nothing; `_mm_pause` does not link from Swift on this toolchain.
}

extension ThreadPool {
    /// Like `parallelFor`, but also passes the thread index (for per-thread scratch).
    public func parallelForWithThread(_ count: Int, _ body: (_ thread: Int, _ range: Range<Int>) -> Void) {
        if count <= 0 { return }
        let n = min(threadCount, count)
        if n == 1 { body(0, 0..<count); return }
        run { t in
            guard t < n else { return }
            let lo = count * t / n, hi = count * (t + 1) / n
            if lo < hi { body(t, lo..<hi) }
        }
    }
}
