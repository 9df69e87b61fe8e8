// IndexMem — public facade. Apache-2.0.

import IndexMemCache
import IndexMemModel

// MARK: - Per-layer caches for a session

/// Makes the layer caches a plan describes.
///
/// Sliding-window layers (Gemma 3's local layers, Mistral) are bounded by their window
/// whatever the policy: each keeps the newest `window` entries (`BoundedLayerCache.slidingWindow`),
/// as llama.cpp's SWA cache does. A budget and its policy apply to the global layers only
/// (a PyramidKV schedule runs over the global layers in order). `layers` is the one place
/// that says which layer is which; the caches, `Session.compress(budget:)` and the server's
/// reservation (`CachePlan.kvBytesBound`) all follow it.
enum CacheBuilder {
    /// What bounds one layer's cache.
    enum LayerBound {
        /// A sliding-window layer: its window, whatever the policy.
        case window(Int)
        /// A global layer under a budget: its share.
        case budget(Int)
        /// A global layer without a policy: every token.
        case full
    }

    /// Each layer's place (the one `LayerContext` its scorer and receiver get) and bound
    /// under `budget` (nil: no policy, every global layer full).
    static func layers(plan: CachePlan, model m: ModelConfiguration, budget: Int?) -> [(context: LayerContext, bound: LayerBound)] {
        let global = m.globalLayers
        let schedule = budget.map { plan.policy.resolved.schedule(budget: $0) }
        var budgetedIndex = 0
        return (0..<m.layerCount).map { layer in
            let shape = m.attentionShape(layer: layer)
            if let window = m.slidingWindow(layer: layer) {
                return (LayerContext(modelLayer: layer, modelLayers: m.layerCount, budgetedLayer: nil, budgetedLayers: global.count,
                                     shape: shape), .window(window))
            }
            let index = budgetedIndex
            budgetedIndex += 1
            let context = LayerContext(modelLayer: layer, modelLayers: m.layerCount, budgetedLayer: index, budgetedLayers: global.count,
                                       shape: shape)
            guard let schedule else { return (context, .full) }
            return (context, .budget(schedule.budget(layer: index, layerCount: global.count, sinks: plan.sinks, window: plan.window)))
        }
    }

    /// - Parameter contextTokens: the first block fed (what a `ratio` is a fraction of).
    static func make(plan: CachePlan, model m: ModelConfiguration, contextTokens: Int) -> (caches: [any LayerCache], budget: Int?) {
        let budget = plan.resolvedBudget(contextTokens: contextTokens)
        let selector = BudgetSelector(sinks: plan.sinks, window: plan.window)
        let bounded = plan.mode == .bounded
        let caches: [any LayerCache] = layers(plan: plan, model: m, budget: budget).map { layer, bound in
            switch bound {
            case .window(let window):
                return BoundedLayerCache.slidingWindow(layer: layer, window: window, chunk: plan.chunk, entryType: plan.kvType)
            case .full:
                return FullLayerCache(shape: layer.shape, capacity: m.contextLength, entryType: plan.kvType)
            case .budget(let share):
                // A plan with a budget has a scorer (checked when it was made).
                guard let policy = plan.policy.resolved.policy else { preconditionFailure("a budget without a scorer") }
                return BoundedLayerCache(
                    layer: layer, budget: share,
                    // A budget beyond the trained context never fills: reserve no more than the context.
                    capacity: bounded ? min(share, m.contextLength) + plan.chunk : m.contextLength, selector: selector, policy: policy,
                    receiver: plan.receiver?(layer) ?? DiscardingReceiver(), timing: bounded ? .afterEveryBlock : .onCompress,
                    entryType: plan.kvType)
            }
        }
        return (caches, budget)
    }
}
