// IndexMem — kernel tests. Apache-2.0.
//
// The thread pool's workers spin, then sleep; a parallel region that starts just as a worker
// goes to sleep must still wake it (a lost wake-up hangs the caller forever, as seen in
// `indexmem serve` and `generate` under load). Regions are started after pauses around
// the spin limit, many times, under a watchdog.

import Foundation
import IndexMemKernels
import Synchronization
import Testing

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

@Suite("Thread pool wake-ups")
struct ThreadPoolWakeupTests {
    @Test("regions started while workers fall asleep always complete")
    func noLostWakeup() async throws {
        let finished = Counter()
        let thread = Thread {
            let pool = ThreadPool(threadCount: 3)
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            let counter = Counter()
            for i in 0..<1500 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                usleep(UInt32(state >> 33) % 3000)  // 0-3 ms: around the workers' spin time
                pool.run { _ in counter.value.add(1, ordering: .relaxed) }
                #expect(counter.value.load(ordering: .relaxed) == 3 * (i + 1))
            }
            finished.value.store(1, ordering: .releasing)
        }
        thread.start()
        let deadline = Date().addingTimeInterval(120)
        while finished.value.load(ordering: .acquiring) == 0 && Date() < deadline { try await Task.sleep(nanoseconds: 50_000_000) }
        #expect(finished.value.load(ordering: .acquiring) == 1, "a parallel region never completed: a worker missed its wake-up")
    }
}
