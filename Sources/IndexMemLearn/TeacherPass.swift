// IndexMem — learning. Apache-2.0.
//
// One teacher pass: the frozen model prefills a training sequence in blocks with full caches;
// the budgeted layers chosen for training record their teacher signal (`TeacherCache`).
// Sliding-window layers are never budgeted and keep a plain full cache.

import IndexMem
import IndexMemCache
import IndexMemKernels
import IndexMemModel

// MARK: - Records of one sequence

/// What one budgeted layer recorded over one sequence.
struct LayerRecord {
    /// Index among the budgeted layers (the index the adapter uses).
    var budgetedLayer: Int
    var tokens: Int
    var hiddenDimension: Int
    var kvHeads: Int
    var headDimension: Int
    /// (tokens, hidden) and (tokens, kvHeads * headDimension).
    var hidden: [Float]
    var plainKeys: [Float]
    /// Per block: first position and (kvHeads, tokens) mass.
    var blockStarts: [Int]
    var blockMass: [[Float]]
    /// Per KV head and entry: largest and summed future attention; queries counted per entry.
    var futureMax: [[Float]]
    var futureSum: [[Float]]
    var futureQueries: [Int]
    /// First position of the final request, and per KV head and entry the largest attention
    /// the request pays it (0 for entries it cannot read from outside the window).
    var requestStart: Int
    var requestMax: [[Float]]
}

enum TeacherPass {
    /// Runs `tokens` through the model and returns the records of the budgeted layers whose
    /// index is in `layers`.
    static func run(engine: Engine, tokens: [Int], requestStart: Int, block: Int, window: Int, layers: Range<Int>) throws -> [LayerRecord] {
        let c = engine.configuration
        let budgeted = c.globalLayers
        var teachers: [Int: TeacherCache] = [:]
        let caches: [any LayerCache] = (0..<c.layerCount).map { layer in
            let shape = c.attentionShape(layer: layer)
            if let index = budgeted.firstIndex(of: layer), layers.contains(index) {
                let t = TeacherCache(shape: shape, capacity: tokens.count, hiddenDimension: c.embeddingDimension, window: window,
                                     requestStart: requestStart, threads: engine.pool.threadCount)
                teachers[index] = t
                return t
            }
            return FullLayerCache(shape: shape, capacity: tokens.count)
        }
        let transformer = Transformer(weights: engine.weights, maxChunk: block, pool: engine.pool)
        try transformer.forward(tokens: tokens, startPosition: 0, caches: caches, logits: .none, into: nil)
        return teachers.keys.sorted().map { index in
            let t = teachers[index]!
            let future = t.futureAttention()
            return LayerRecord(budgetedLayer: index, tokens: tokens.count, hiddenDimension: c.embeddingDimension,
                               kvHeads: c.kvHeads, headDimension: c.headDimension, hidden: t.hidden, plainKeys: t.plainKeys,
                               blockStarts: t.blockStarts, blockMass: t.blockMass, futureMax: future.max,
                               futureSum: future.sum, futureQueries: future.queries, requestStart: requestStart,
                               requestMax: future.request)
        }
    }
}
