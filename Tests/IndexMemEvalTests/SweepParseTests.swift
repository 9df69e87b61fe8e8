// IndexMem — evaluation tests. Apache-2.0.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemEval
import Synchronization
import Testing

@Suite("A sweep parses each policy spec once")
struct SweepParseTests {
    static let resolutions = Mutex(0)

    @Test("work items of every budget and mode share the one resolved policy")
    func oncePerSweep() throws {
        let name = "test-counted-sweep"
        PolicyRegistry.register(PolicyDefinition(name: name, summary: "window, counting its resolutions", keeps: "as window") {
            _ throws(PolicyError) in
            SweepParseTests.resolutions.withLock { $0 += 1 }
            return ResolvedPolicy(scorer: WindowPolicy())
        })
        var spec = SweepSpec()
        spec.tasks = ["niah_single_noise"]
        spec.lengths = [1024, 2048]
        spec.policies = ["full", name]
        spec.budgets = [128, 256]
        spec.ratios = [0.25]
        spec.modes = ["bounded", "prefill-then-compress"]
        let before = Self.resolutions.withLock { $0 }
        let items = try spec.workItems()
        #expect(items.count == 2 * (1 + 2 * 3))
        #expect(Self.resolutions.withLock { $0 } - before == 1)
        #expect(Set(items.map(\.key.policy)) == ["full", "window"])
    }
}
