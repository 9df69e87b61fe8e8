// IndexMem — public facade. Apache-2.0.

import IndexMemCache

// MARK: - Per-layer caches for a session

/// Makes the layer caches a configuration describes.
///
/// Sliding-window layers (Gemma 3's local layers, Mistral) are bounded by their window
/// whatever the policy: each keeps the newest `window` entries (`BoundedLayerCache.slidingWindow`),
/// as llama.cpp's SWA cache does. A budget and its policy apply to the global layers only
/// (a PyramidKV schedule runs over the global layers in order).
enum CacheBuilder {
    /// - Parameters:
    ///   - contextTokens: the first block fed (what a `ratio` is a fraction of).
    ///   - receiver: makes the evicted-entry receiver of each layer.
    static func make(configuration c: CacheConfiguration, model m: ModelConfiguration, contextTokens: Int,
                     receiver: (Int) -> any EvictedEntryReceiver = { _ in DiscardingReceiver() }) throws(EngineError) -> (caches: [any LayerCache], budget: Int?) {
        let resolved = try c.resolvedPolicy()
        let shapes = (0..<m.layerCount).map { m.attentionShape(layer: $0) }
        let globalLayers = (0..<m.layerCount).filter { shapes[$0].slidingWindow == nil }
        func slidingCache(_ layer: Int) -> (any LayerCache)? {
            BoundedLayerCache.slidingWindow(shape: shapes[layer], chunk: c.chunk, layer: layer, layerCount: m.layerCount)
        }
        guard let policy = resolved.policy, let budget = c.resolvedBudget(contextTokens: contextTokens) else {
            return ((0..<m.layerCount).map { slidingCache($0) ?? FullLayerCache(shape: shapes[$0], capacity: m.contextLength) }, nil)
        }
        let budgets = try layerBudgets(configuration: c, model: m, budget: budget)
        let selector = BudgetSelector(sinks: c.sinks, window: c.window)
        let caches: [any LayerCache] = (0..<m.layerCount).map { layer in
            if let sliding = slidingCache(layer) { return sliding }
            let layerBudget = budgets[layer] ?? budget
            let index = globalLayers.firstIndex(of: layer) ?? layer
            let bounded = c.mode == .bounded
            return BoundedLayerCache(
                shape: shapes[layer], layer: index, layerCount: globalLayers.count, budget: layerBudget,
                // A budget beyond the trained context never fills: reserve no more than the context.
                capacity: bounded ? min(layerBudget, m.contextLength) + c.chunk : m.contextLength, selector: selector, policy: policy,
                receiver: receiver(layer), timing: bounded ? .afterEveryBlock : .onCompress)
        }
        return (caches, budget)
    }

    /// Each layer's share of `budget`: nil for a sliding-window layer (its window bounds it),
    /// otherwise the policy's schedule, run over the global layers in order.
    static func layerBudgets(configuration c: CacheConfiguration, model m: ModelConfiguration, budget: Int) throws(EngineError) -> [Int?] {
        let schedule = try c.resolvedPolicy().schedule(budget: budget)
        let globalLayers = (0..<m.layerCount).filter { m.slidingWindow(layer: $0) == nil }
        var budgets = [Int?](repeating: nil, count: m.layerCount)
        for (index, layer) in globalLayers.enumerated() {
            budgets[layer] = schedule.budget(layer: index, layerCount: globalLayers.count, sinks: c.sinks, window: c.window)
        }
        return budgets
    }
}
