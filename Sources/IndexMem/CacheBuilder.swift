// IndexMem — public facade. Apache-2.0.

import IndexMemCache

// MARK: - Per-layer caches for a session

/// Makes the layer caches a configuration describes.
///
/// Sliding-window layers (Gemma 3's local layers, Mistral) are bounded by their window
/// whatever the policy: each keeps the newest `window` entries (`BoundedLayerCache.slidingWindow`),
/// as llama.cpp's SWA cache does. A budget and its policy apply to the global layers only
/// (a PyramidKV schedule runs over the global layers in order). `layerBounds` is the one
/// place that says which layer is which; the caches, `Session.compress(budget:)` and the
/// server's reservation (`kvBytesBound`) all follow it.
enum CacheBuilder {
    /// What bounds one layer's cache.
    enum LayerBound {
        /// A sliding-window layer: its window, whatever the policy.
        case window(Int)
        /// A global layer under a budget: its share, and its index among the global layers.
        case budget(Int, globalIndex: Int, globalLayers: Int)
        /// A global layer without a policy: every token.
        case full
    }

    /// Each layer's bound under `budget` (nil: no policy, every global layer full).
    static func layerBounds(configuration c: CacheConfiguration, model m: ModelConfiguration, budget: Int?) throws(EngineError) -> [LayerBound] {
        let globalLayers = m.globalLayers
        let schedule = try budget.map { b throws(EngineError) in try c.resolvedPolicy().schedule(budget: b) }
        var bounds = [LayerBound](repeating: .full, count: m.layerCount)
        for layer in 0..<m.layerCount { if let w = m.slidingWindow(layer: layer) { bounds[layer] = .window(w) } }
        if let schedule {
            for (index, layer) in globalLayers.enumerated() {
                let share = schedule.budget(layer: index, layerCount: globalLayers.count, sinks: c.sinks, window: c.window)
                bounds[layer] = .budget(share, globalIndex: index, globalLayers: globalLayers.count)
            }
        }
        return bounds
    }

    /// The budget a configuration resolves to for a first block of `contextTokens` (nil: no
    /// policy, a full cache).
    static func budget(configuration c: CacheConfiguration, contextTokens: Int) throws(EngineError) -> Int? {
        try c.resolvedPolicy().policy == nil ? nil : c.resolvedBudget(contextTokens: contextTokens)
    }

    /// - Parameters:
    ///   - contextTokens: the first block fed (what a `ratio` is a fraction of).
    ///   - receiver: makes the evicted-entry receiver of each layer.
    static func make(configuration c: CacheConfiguration, model m: ModelConfiguration, contextTokens: Int,
                     receiver: (Int) -> any EvictedEntryReceiver = { _ in DiscardingReceiver() }) throws(EngineError) -> (caches: [any LayerCache], budget: Int?) {
        let resolved = try c.resolvedPolicy()
        if let learned = resolved.policy as? IndexerPolicy {
            if let reason = learned.incompatibility(budgetedLayers: m.globalLayers.count, hiddenDimension: m.embeddingDimension,
                                                    shape: m.attentionShape(layer: 0)) {
                throw .invalidCacheConfiguration("policy '\(learned.spec)': \(reason)")
            }
        }
        let budget = try budget(configuration: c, contextTokens: contextTokens)
        let selector = BudgetSelector(sinks: c.sinks, window: c.window)
        let bounded = c.mode == .bounded
        let caches: [any LayerCache] = try layerBounds(configuration: c, model: m, budget: budget).enumerated().map { layer, bound in
            let shape = m.attentionShape(layer: layer)
            switch bound {
            case .window(let window):
                return BoundedLayerCache.slidingWindow(shape: shape, window: window, chunk: c.chunk, layer: layer, layerCount: m.layerCount)
            case .full:
                return FullLayerCache(shape: shape, capacity: m.contextLength)
            case .budget(let share, let index, let globalLayers):
                guard let policy = resolved.policy else { return FullLayerCache(shape: shape, capacity: m.contextLength) }
                return BoundedLayerCache(
                    shape: shape, layer: index, layerCount: globalLayers, budget: share,
                    // A budget beyond the trained context never fills: reserve no more than the context.
                    capacity: bounded ? min(share, m.contextLength) + c.chunk : m.contextLength, selector: selector, policy: policy,
                    receiver: receiver(layer), timing: bounded ? .afterEveryBlock : .onCompress)
            }
        }
        return (caches, budget)
    }
}
