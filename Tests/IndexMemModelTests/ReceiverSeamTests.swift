// IndexMem — model tests. Apache-2.0.
//
// A cache plan carries an evicted-entry receiver factory: each budgeted layer's cache gets
// the receiver made for its `LayerContext`, the same context its scorer was made for, and
// the receivers' state is reported as `memoryBytes`, apart from the KV bytes.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemTestSupport
import Synchronization
import Testing

/// A policy (the window's scorer) that records the layer contexts its scorers are made for.
struct ContextRecordingPolicy: EvictionPolicy {
    static let made = Mutex<[LayerContext]>([])
    static let name = "test-context-recording"
    static let registered: Void = PolicyRegistry.register(PolicyDefinition(name: name, summary: "records layer contexts", keeps: "as window") {
        _ throws(PolicyError) in ResolvedPolicy(scorer: ContextRecordingPolicy())
    })

    var spec: String { Self.name }
    var signals: PolicySignals { [] }
    func makeScorer(for layer: LayerContext) -> any LayerScorer {
        Self.made.withLock { $0.append(layer) }
        return WindowPolicy().makeScorer(for: layer)
    }
}

@Suite("Evicted-entry receivers from the cache plan", .serialized)
struct ReceiverSeamTests {
    /// A latent memory whose gate is shut: it absorbs every evicted entry, and adds nothing.
    static func closedMemory(_ layer: LayerContext) -> any EvictedEntryReceiver {
        let s = layer.shape, rank = 4
        return LatentMemory(parameters: LatentMemoryParameters(
            rank: rank, headDimension: s.headDimension, kvHeads: s.kvHeads,
            projection: (0..<(s.kvHeads * rank * s.headDimension)).map { Float($0 % 7) * 0.01 },
            gate: (0..<s.kvHeads).flatMap { _ in [Float(-1e9), 0, 0] }))
    }

    @Test("a closed memory keeps the logits, absorbs what is evicted, and reports its bytes as memory_bytes")
    func memoryBytes() throws {
        let engine = try SharedEngine.get()
        let prompt = try SharedEngine.licenseTokens(400)
        let plain = try CacheConfiguration(policy: "snapkv", budget: 96, window: 32, chunk: 64).resolve()
        var remembering = plain
        remembering.receiver = { Self.closedMemory($0) }
        let a = try engine.makeSession(cache: plain), b = try engine.makeSession(cache: remembering)
        try a.feed(prompt)
        try b.feed(prompt)
        #expect(a.lastLogits == b.lastLogits)
        let memories = b.layerCaches.compactMap { ($0 as? BoundedLayerCache)?.receiver as? LatentMemory }
        #expect(memories.count == engine.configuration.globalLayers.count)
        #expect(memories.allSatisfy { $0.absorbed.allSatisfy { $0 > 0 } })
        let report = b.cacheReport(), plainReport = a.cacheReport()
        #expect(report.memoryBytes == memories.reduce(0) { $0 + $1.bytes } && report.memoryBytes > 0)
        #expect(plainReport.memoryBytes == 0 && plainReport.policyBytes == report.policyBytes && report.kvBytes == plainReport.kvBytes)
    }

    @Test("on Gemma 3 the scorer and the receiver of a layer get one context: model layer 5 is budgeted layer 0")
    func oneLayerContext() throws {
        let engine = try LoadedGemma.get().engine
        _ = ContextRecordingPolicy.registered
        ContextRecordingPolicy.made.withLock { $0 = [] }
        let received = Mutex<[LayerContext]>([])
        var plan = try CacheConfiguration(policy: ContextRecordingPolicy.name, budget: 128).resolve()
        plan.receiver = { layer in
            received.withLock { $0.append(layer) }
            return DiscardingReceiver()
        }
        let session = try engine.makeSession(cache: plan)
        session.prepare(contextTokens: 1000)
        let global = engine.configuration.globalLayers
        let contexts = received.withLock { $0 }
        #expect(contexts == ContextRecordingPolicy.made.withLock { $0 })
        #expect(contexts.map(\.modelLayer) == global && contexts.map(\.budgetedLayer) == global.indices.map { Optional($0) })
        #expect(contexts.allSatisfy { $0.modelLayers == engine.configuration.layerCount && $0.budgetedLayers == global.count })
        #expect(contexts.first?.modelLayer == 5 && contexts.first?.budgetedLayer == 0)
        // Sliding-window layers have no budgeted index and no receiver.
        let sliding = session.layerCaches.compactMap { $0 as? BoundedLayerCache }.filter { $0.layer.budgetedLayer == nil }
        #expect(sliding.count == engine.configuration.slidingLayerCount && sliding.allSatisfy { $0.receiver is DiscardingReceiver })
    }
}
