// IndexMem — public facade. Apache-2.0.

import IndexMemCache
import IndexMemModel

// MARK: - KV bytes a sequence may hold

extension CachePlan {
    /// The most bytes of keys and values a session with this plan holds for one sequence
    /// (K and V in the plan's entry type, summed over layers and KV heads): what a server reserves from its KV
    /// pool before it admits a request.
    ///
    /// Storage is mapped lazily (pages become resident as entries are written), so a cache
    /// costs the entries it actually holds: a sliding-window layer at most its window plus
    /// slack and one chunk, a bounded cache at most its budget plus one chunk per layer, a full
    /// cache (or a prefill-then-compress cache before it compresses) every token of the
    /// sequence, never more than the model's context. The layers are those `CacheBuilder`
    /// makes.
    /// - Parameters:
    ///   - model: the model's configuration.
    ///   - promptTokens: the first block fed (what a `ratio` budget is a fraction of).
    ///   - totalTokens: prompt plus the most tokens that will be generated.
    /// - Returns: bytes.
    public func kvBytesBound(model m: ModelConfiguration, promptTokens: Int, totalTokens: Int) -> Int {
        let sequence = min(max(totalTokens, 0), m.contextLength)
        let budget = resolvedBudget(contextTokens: promptTokens)
        let entries = CacheBuilder.layers(plan: self, model: m, budget: budget).reduce(0) { total, layer in
            switch layer.bound {
            case .window(let window): total + min(BoundedLayerCache.slidingCapacity(window: window, chunk: chunk), sequence)
            case .budget(let share) where mode == .bounded: total + min(share + chunk, sequence)
            case .budget, .full: total + sequence
            }
        }
        return entries * m.kvBytesPerEntry(kvType)
    }
}
