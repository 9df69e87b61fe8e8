// IndexMem — cache. Apache-2.0.
//
// One selector for every scorer: keep the highest scores under the budget, never evicting
// the sink tokens (the sequence's first positions, StreamingLLM's attention sinks) or the
// recent window. Per-layer budgets (PyramidKV) are a schedule of this selector, so they
// compose with any scorer, the learned indexer included.

// MARK: - Budget schedule

/// How many entries each layer keeps per KV head.
public enum BudgetSchedule: Sendable, Equatable {
    /// Every layer keeps `budget`.
    case uniform(Int)
    /// PyramidKV (Cai et al. 2024, arXiv:2406.02069): budgets fall linearly from the first
    /// layer to the last, averaging `budget`; the last layer keeps `(budget - window) / beta`
    /// besides the window, the first `2 (budget - window) - (budget - window) / beta`.
    ///
    /// This is the paper's code (KVCache-Factory, `PyramidKVCluster.update_kv`, whose
    /// `max_capacity_prompt` is our budget and includes the window) in its pyramid branch,
    /// except that budgets are rounded (it floors), no layer goes below `sinks + window` (then
    /// the average is slightly higher), and its branches that need the prompt length are not
    /// taken (a budget is fixed before the prompt is seen): it keeps the same budget on every
    /// layer when the prompt is shorter than `2 (budget - window)`, and caps the first layer at
    /// the prompt minus the window, raising the last ones to keep the average.
    ///
    /// kvpress's `PyramidKVPress.get_layer_budget` differs: its layer budgets average `budget`
    /// with the window counted inside them (last layer `budget / beta`, first
    /// `2 budget - budget / beta`, the window kept within), and it falls back to SnapKV's
    /// uniform budget unless `budget / beta >= window_size` (64), i.e. for every budget under
    /// 1280 at beta 20: there kvpress's PyramidKV is SnapKV.
    case pyramid(budget: Int, beta: Double)

    /// The budget of `layer` of `layerCount`.
    public func budget(layer: Int, layerCount: Int, sinks: Int, window: Int) -> Int {
        switch self {
        case .uniform(let b): return b
        case .pyramid(let b, let beta):
            let free = Double(max(0, b - window))
            let minimum = free / beta
            let maximum = 2 * free - minimum
            let step = layerCount > 1 ? (maximum - minimum) / Double(layerCount - 1) : 0
            let layerBudget = Int((maximum - Double(layer) * step).rounded()) + window
            return max(layerBudget, sinks + window)
        }
    }

    /// The average budget (what a user asked for).
    public var nominalBudget: Int {
        switch self {
        case .uniform(let b): return b
        case .pyramid(let b, _): return b
        }
    }
}

// MARK: - Selector

/// Chooses which entries of one KV head to evict.
public struct BudgetSelector: Sendable, Equatable {
    /// Positions below this are never evicted.
    public var sinks: Int
    /// The newest `window` positions are never evicted.
    public var window: Int

    public init(sinks: Int, window: Int) {
        self.sinks = sinks
        self.window = window
    }

    /// Writes to `evict` the slots (ascending) to drop so that `count - budget` remain
    /// evicted: the lowest scores among unprotected entries, older first among equal scores.
    /// - Parameters:
    ///   - newest: the highest position held (the recent window ends there).
    ///   - scratch: room for `count` candidates.
    /// - Returns: how many slots were written.
    public func select(count: Int, budget: Int, newest: Int32, positions: UnsafePointer<Int32>, scores: UnsafePointer<Float>,
                       scratch: UnsafeMutablePointer<Int>, evict: UnsafeMutablePointer<Int>) -> Int {
        let excess = count - budget
        guard excess > 0 else { return 0 }
        let recentStart = Int64(newest) - Int64(window) + 1
        var candidates = 0
        for slot in 0..<count {
            let p = Int64(positions[slot])
            if p < Int64(sinks) || p >= recentStart { continue }
            scratch[candidates] = slot
            candidates += 1
        }
        let n = min(excess, candidates)
        guard n > 0 else { return 0 }
        @inline(__always) func before(_ a: Int, _ b: Int) -> Bool {
            let sa = scores[a], sb = scores[b]
            if sa != sb { return sa < sb || (sb.isNaN && !sa.isNaN) }
            return positions[a] < positions[b]
        }
        if n == 1 {
            var best = scratch[0]
            for i in 1..<candidates where before(scratch[i], best) { best = scratch[i] }
            evict[0] = best
            return 1
        }
        var buffer = UnsafeMutableBufferPointer(start: scratch, count: candidates)
        buffer.sort(by: before)
        for i in 0..<n { evict[i] = scratch[i] }
        var chosen = UnsafeMutableBufferPointer(start: evict, count: n)
        chosen.sort()
        return n
    }
}
