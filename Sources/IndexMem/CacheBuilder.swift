// IndexMem — public facade. Apache-2.0.

import IndexMemCache

// MARK: - Per-layer caches for a session

/// Makes the layer caches a configuration describes.
enum CacheBuilder {
    /// - Parameters:
    ///   - contextTokens: the first block fed (what a `ratio` is a fraction of).
    ///   - receiver: makes the evicted-entry receiver of each layer.
    static func make(configuration c: CacheConfiguration, model m: ModelConfiguration, contextTokens: Int,
                     receiver: (Int) -> any EvictedEntryReceiver = { _ in DiscardingReceiver() }) throws(EngineError) -> (caches: [any LayerCache], budget: Int?) {
        let resolved = try c.resolvedPolicy()
        let shape = AttentionShape(queryHeads: m.queryHeads, kvHeads: m.kvHeads, headDimension: m.headDimension,
                                   scale: 1 / Float(m.headDimension).squareRoot(), slidingWindow: m.slidingWindow)
        guard let policy = resolved.policy, let budget = c.resolvedBudget(contextTokens: contextTokens) else {
            return ((0..<m.layerCount).map { _ in FullLayerCache(shape: shape, capacity: m.contextLength) }, nil)
        }
        let schedule = resolved.schedule(budget: budget)
        let selector = BudgetSelector(sinks: c.sinks, window: c.window)
        let caches: [any LayerCache] = (0..<m.layerCount).map { layer in
            let layerBudget = schedule.budget(layer: layer, layerCount: m.layerCount, sinks: c.sinks, window: c.window)
            let bounded = c.mode == .bounded
            return BoundedLayerCache(
                shape: shape, layer: layer, layerCount: m.layerCount, budget: layerBudget,
                // A budget beyond the trained context never fills: reserve no more than the context.
                capacity: bounded ? min(layerBudget, m.contextLength) + c.chunk : m.contextLength, selector: selector, policy: policy,
                receiver: receiver(layer), timing: bounded ? .afterEveryBlock : .onCompress)
        }
        return (caches, budget)
    }
}
