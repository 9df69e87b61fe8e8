// IndexMem — public facade. Apache-2.0.

import IndexMemCache

// MARK: - KV bytes a sequence may hold

extension CacheConfiguration {
    /// The most bytes of keys and values a session with this configuration holds for one
    /// sequence (f16 K and V, summed over layers and KV heads): what a server reserves from
    /// its KV pool before it admits a request.
    ///
    /// Storage is mapped lazily (pages become resident as entries are written), so a cache
    /// costs the entries it actually holds: a bounded cache at most its budget plus one chunk
    /// per layer, a full cache (or a prefill-then-compress cache before it compresses) every
    /// token of the sequence, never more than the model's context.
    /// - Parameters:
    ///   - model: the model's configuration.
    ///   - promptTokens: the first block fed (what a `ratio` budget is a fraction of).
    ///   - totalTokens: prompt plus the most tokens that will be generated.
    /// - Returns: bytes.
    /// - Throws: `EngineError.invalidCacheConfiguration` for an unknown policy.
    public func kvBytesBound(model m: ModelConfiguration, promptTokens: Int, totalTokens: Int) throws(EngineError) -> Int {
        let resolved = try resolvedPolicy()
        let sequence = min(max(totalTokens, 0), m.contextLength)
        let perEntry = m.kvHeads * m.headDimension * 2 * 2
        guard resolved.policy != nil, mode == .bounded, let budget = resolvedBudget(contextTokens: promptTokens) else {
            return sequence * perEntry * m.layerCount
        }
        let schedule = resolved.schedule(budget: budget)
        var entries = 0
        for layer in 0..<m.layerCount {
            let layerBudget = schedule.budget(layer: layer, layerCount: m.layerCount, sinks: sinks, window: window)
            entries += min(layerBudget + chunk, sequence)
        }
        return entries * perEntry
    }
}
