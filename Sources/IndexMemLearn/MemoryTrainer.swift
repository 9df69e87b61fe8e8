// IndexMem — learning. Apache-2.0.
//
// `indexmem train memory`: fits the latent memory of every budgeted layer and adds it to an
// adapter. Two passes over training sequences of the frozen model, layer-local:
//   1. key moments (`KeyMomentCache`) of the first `projectionSequences` sequences: each KV
//      head's key subspace W is the top-`rank` principal directions of its keys;
//   2. residual samples (`MemoryTeacherCache`): bounded mode simulated for several policies
//      and budgets beside the full cache; each sampled query gives the eight numbers of the
//      gate's loss. Every `validationEvery`-th sequence is held out.
// Then per layer and KV head the gate and tilt are fitted (`MemoryGateLoss.fit`, from the
// closed form), and the held-out error left by eviction is reported per policy: without the
// memory, with its closed form (memory-softmax) and with the fitted gate.
// Resumable: W and each finished sequence's samples are checkpointed beside the output.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemKernels
import IndexMemModel
import IndexMemSafetensors

// MARK: - Options

public struct MemoryTrainingOptions: Sendable, Equatable {
    public var sequences = 12
    public var length = 2048
    public var block = 256
    public var sinks = 4
    public var window = 64
    /// Rank r of the key subspace.
    public var rank = 8
    /// Budgets the shadows run at, in turn per sequence.
    public var budgets: [Int] = [128, 256, 512]
    /// Policies whose evictions the memory learns to restore.
    public var policies: [String] = ["indexmem", "tova", "window"]
    /// Sequences whose keys give the subspace.
    public var projectionSequences = 4
    /// Every this many query positions is sampled.
    public var stride = 4
    /// Seed of the training sequences (the indexer's adapter used seed 0: other sequences).
    public var seed: UInt64 = 1
    /// Every this many sequences is held out.
    public var validationEvery = 4
    /// Samples per layer and head the fit reads at most.
    public var fitSamples = 40000

    public init() {}

    var fingerprint: String {
        "memory recipe=\(TrainingSampleMaker.recipeVersion) seq=\(sequences) len=\(length) block=\(block) sinks=\(sinks) window=\(window) rank=\(rank) budgets=\(budgets) policies=\(policies) pca=\(projectionSequences) stride=\(stride) seed=\(seed) val=\(validationEvery)"
    }
}

// MARK: - Trainer

public final class MemoryTrainer {
    public let engine: Engine
    public let corpus: TrainingCorpus
    public let options: MemoryTrainingOptions
    public let adapter: String
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    /// Called after each sequence: (sequences done, total, tokens/s, seconds left).
    public var progress: ((Int, Int, Double, Double) -> Void)? = nil
    /// Stop after this many sequences in this run (tests simulate a killed run).
    public var stopAfter: Int? = nil

    /// - Parameter adapter: the adapter the memory is added to (its indexer drives the `indexmem` shadow).
    public init(engine: Engine, corpus: TrainingCorpus, options: MemoryTrainingOptions, adapter: String) {
        self.engine = engine
        self.corpus = corpus
        self.options = options
        self.adapter = adapter
    }

    /// Fits the memory and writes the adapter with it to `out`. Returns false when stopped early.
    @discardableResult
    public func train(out: String, command: String) throws -> Bool {
        let c = engine.configuration
        let layers = c.globalLayers
        let d = c.headDimension, h = c.kvHeads, r = options.rank
        guard (1...d).contains(r) else { throw LearnError.invalidArgument("--rank must be in 1...\(d)") }
        guard !options.budgets.isEmpty, options.budgets.allSatisfy({ $0 >= options.sinks + options.window }) else {
            throw LearnError.invalidArgument("--budgets must each hold the sinks and the window (\(options.sinks + options.window))")
        }
        let shared = try engine.indexer(adapter: adapter)
        let resolved = try options.policies.map { spec -> any EvictionPolicy in
            let policy: ResolvedPolicy
            do { policy = try PolicyRegistry.resolve(spec) } catch { throw LearnError.invalidArgument("policy \(spec): \(error)") }
            guard let scorer = policy.binding(indexer: shared.parameters).policy else {
                throw LearnError.invalidArgument("policy \(spec) evicts nothing: the memory needs an evicting policy")
            }
            return scorer
        }
        let directory = out + ".memory-checkpoint"
        try prepare(directory: directory)
        let maker = TrainingSampleMaker(engine: engine, corpus: corpus, length: options.length)
        let start = Date()
        var doneHere = 0, tokensHere = 0

        // 1. The key subspace.
        let projectionPath = directory + "/projection.bin"
        var projection: [[Float]]
        if let saved = try? Data(contentsOf: URL(fileURLWithPath: projectionPath)), saved.count == layers.count * h * r * d * 4 {
            let all = saved.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            projection = (0..<layers.count).map { Array(all[($0 * h * r * d)..<(($0 + 1) * h * r * d)]) }
        } else {
            var moments: [KeyMomentCache] = []
            for index in 0..<options.projectionSequences {
                let tokens = maker.sample(seed: options.seed, index: index).tokens
                let caches = makeCaches(tokens: tokens.count) { _, context in
                    let m = KeyMomentCache(shape: context.shape, capacity: tokens.count)
                    moments.append(m)
                    return m
                }
                try forward(tokens, caches: caches)
                log("train memory: key moments, sequence \(index + 1)/\(options.projectionSequences) (\(tokens.count) tokens)")
            }
            projection = (0..<layers.count).map { l in
                var sum = [[Double]](repeating: [Double](repeating: 0, count: d * d), count: h)
                for (i, m) in moments.enumerated() where i % layers.count == l {
                    for (g, cov) in m.covariances().enumerated() { for k in cov.indices { sum[g][k] += cov[k] } }
                }
                return (0..<h).flatMap { g in SymmetricEigen.decompose(sum[g], n: d).vectors.prefix(r).flatMap { $0.map(Float.init) } }
            }
            let flat = projection.flatMap { $0 }
            try flat.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: projectionPath)) }
        }

        // 2. Residual samples, one file per finished sequence.
        for index in 0..<options.sequences {
            let path = directory + "/sequence-\(index).bin"
            if FileManager.default.fileExists(atPath: path) { continue }
            if let stopAfter, doneHere >= stopAfter { return false }
            let sequence = maker.sample(seed: options.seed, index: index)
            let tokens = sequence.tokens
            let budget = options.budgets[index % options.budgets.count]
            var teachers: [MemoryTeacherCache] = []
            let caches = makeCaches(tokens: tokens.count) { l, context in
                let shadows = resolved.map { policy in
                    let memory = LatentMemory(parameters: LatentMemoryParameters(rank: r, headDimension: d, kvHeads: h, projection: projection[l]),
                                              readout: .none)
                    return MemoryTeacherCache.Shadow(
                        cache: BoundedLayerCache(layer: context, budget: budget, capacity: budget + options.block,
                                                 selector: BudgetSelector(sinks: options.sinks, window: options.window),
                                                 policy: policy, receiver: memory))
                }
                let t = MemoryTeacherCache(layer: context, capacity: tokens.count, shadows: shadows, stride: options.stride,
                                           threads: engine.pool.threadCount)
                teachers.append(t)
                return t
            }
            try forward(tokens, caches: caches)
            try Self.writeSamples(teachers.map(\.samples), to: path)
            doneHere += 1
            tokensHere += tokens.count
            let elapsed = Date().timeIntervalSince(start)
            let rate = Double(tokensHere) / max(elapsed, 1e-9)
            let remaining = (index + 1..<options.sequences).filter { !FileManager.default.fileExists(atPath: directory + "/sequence-\($0).bin") }.count
            let left = Double(remaining) * elapsed / Double(doneHere)
            let count = teachers.reduce(0) { $0 + $1.samples.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }
            log(String(format: "train memory: sequence %d/%d (%@, %d tokens, budget %d%@): %d samples, %.0f tokens/s, ETA %@", index + 1,
                       options.sequences, sequence.kind.rawValue, tokens.count, budget, isHeldOut(index) ? ", held out" : "", count, rate,
                       IndexerTrainer.duration(left)))
            progress?(options.sequences - remaining, options.sequences, rate, left)
        }

        // 3. Fit per layer and head; report the held-out error per policy.
        var train = [[[MemorySample]]](repeating: [[MemorySample]](repeating: [], count: h), count: layers.count)
        var held = [[[[MemorySample]]]](repeating: [[[MemorySample]]](repeating: [[MemorySample]](repeating: [], count: h), count: resolved.count),
                                        count: layers.count)
        for index in 0..<options.sequences {
            let samples = try Self.readSamples(directory + "/sequence-\(index).bin", layers: layers.count, shadows: resolved.count, heads: h)
            for l in 0..<layers.count {
                for s in 0..<resolved.count {
                    for g in 0..<h {
                        if isHeldOut(index) { held[l][s][g] += samples[l][s][g] } else { train[l][g] += samples[l][s][g] }
                    }
                }
            }
        }
        var memory: [LatentMemoryParameters] = []
        // [policy]: summed baseline, closed-form and fitted held-out losses.
        var totals = [[Double]](repeating: [0, 0, 0], count: resolved.count)
        for l in 0..<layers.count {
            var gate: [Float] = [], tilt: [Float] = []
            var line: [String] = []
            for g in 0..<h {
                let all = train[l][g]
                let step = max(1, all.count / options.fitSamples)
                let subset = step == 1 ? all : Swift.stride(from: 0, to: all.count, by: step).map { all[$0] }
                var p = MemoryGateLoss.fit(subset)
                // A gate that does worse than none on its own samples is shut.
                if !subset.isEmpty && MemoryGateLoss.lossAndGradient(p, subset).loss > MemoryGateLoss.baseline(subset) { p = [-30, 0, 0, 0] }
                gate += [Float(p[0]), Float(p[1]), Float(p[2])]
                tilt.append(Float(p[3]))
                for s in 0..<resolved.count where !held[l][s][g].isEmpty {
                    let v = held[l][s][g], n = Double(v.count)
                    totals[s][0] += MemoryGateLoss.baseline(v) * n
                    totals[s][1] += MemoryGateLoss.lossAndGradient(MemoryGateLoss.closedForm, v).loss * n
                    totals[s][2] += MemoryGateLoss.lossAndGradient(p, v).loss * n
                }
                line.append(String(format: "head %d: c = (%.2f, %.2f, %.2f), beta %.2f, %d samples", g, p[0], p[1], p[2], p[3], all.count))
            }
            memory.append(LatentMemoryParameters(rank: r, headDimension: d, kvHeads: h, projection: projection[l], gate: gate, tilt: tilt))
            log("train memory: layer \(l): " + line.joined(separator: "; "))
        }
        var summary: [String] = []
        for (s, spec) in options.policies.enumerated() where totals[s][0] > 0 {
            let closed = totals[s][1] / totals[s][0], fitted = totals[s][2] / totals[s][0]
            summary.append(String(format: "%@: closed form %.3f, fitted %.3f", spec, closed, fitted))
        }
        log("train memory: held-out error left by eviction (1 = no memory): " + summary.joined(separator: "; "))

        var file: Safetensors
        do { file = try Safetensors(path: adapter) } catch { throw LearnError.invalidArgument("\(adapter): \(error)") }
        for name in file.tensors.keys where name.hasPrefix("memory.") { file.tensors[name] = nil }
        IndexerAdapterFile.encodeMemory(memory, into: &file, metadata: [
            "memory_command": command, "memory_policies": options.policies.joined(separator: ","),
            "memory_budgets": options.budgets.map(String.init).joined(separator: ","), "memory_sequences": String(options.sequences),
            "memory_sequence_length": String(options.length), "memory_seed": String(options.seed),
            "memory_validation": summary.joined(separator: "; "),
            "memory_elapsed_seconds": String(format: "%.0f", Date().timeIntervalSince(start)),
        ])
        try file.write(to: out)
        log("train memory: wrote \(out) (\(memory.count) layers, rank \(r), \(memory.first?.stateBytes ?? 0) bytes of state per layer)")
        return true
    }

    func isHeldOut(_ index: Int) -> Bool { options.validationEvery > 0 && index % options.validationEvery == options.validationEvery - 1 }

    /// A fresh checkpoint directory, or the one of an interrupted run with the same options.
    private func prepare(directory: String) throws {
        let fm = FileManager.default
        let stamp = directory + "/fingerprint.txt"
        if let existing = try? String(contentsOfFile: stamp, encoding: .utf8) {
            if existing == options.fingerprint + "\n" + engine.sha256 {
                log("train memory: resuming from \(directory)")
                return
            }
            log("train memory: \(directory) was made with other options; starting over")
            try fm.removeItem(atPath: directory)
        }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try (options.fingerprint + "\n" + engine.sha256).write(toFile: stamp, atomically: true, encoding: .utf8)
    }

    /// Caches for one sequence: `budgeted(index, context)` for each budgeted layer, full caches elsewhere.
    private func makeCaches(tokens: Int, budgeted: (Int, LayerContext) -> any LayerCache) -> [any LayerCache] {
        let c = engine.configuration
        let global = c.globalLayers
        return (0..<c.layerCount).map { layer in
            let shape = c.attentionShape(layer: layer)
            guard let index = global.firstIndex(of: layer) else { return FullLayerCache(shape: shape, capacity: tokens) }
            return budgeted(index, LayerContext(modelLayer: layer, modelLayers: c.layerCount, budgetedLayer: index,
                                                budgetedLayers: global.count, shape: shape))
        }
    }

    private func forward(_ tokens: [Int], caches: [any LayerCache]) throws {
        let transformer = Transformer(weights: engine.weights, maxChunk: options.block, pool: engine.pool)
        try transformer.forward(tokens: tokens, startPosition: 0, caches: caches, logits: .none, into: nil)
    }

    // MARK: Sample files

    /// [layer][shadow][head] samples as: per list a UInt32 count, then 8 floats per sample.
    static func writeSamples(_ samples: [[[[MemorySample]]]], to path: String) throws {
        var data = Data()
        for layer in samples {
            for shadow in layer {
                for list in shadow {
                    var n = UInt32(list.count).littleEndian
                    data.append(Data(bytes: &n, count: 4))
                    let floats = list.flatMap(\.array)
                    floats.withUnsafeBytes { data.append(contentsOf: $0) }
                }
            }
        }
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    static func readSamples(_ path: String, layers: Int, shadows: Int, heads: Int) throws -> [[[[MemorySample]]]] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw LearnError.checkpoint("cannot read \(path): \(error)") }
        var offset = 0
        func next(_ bytes: Int) throws -> Data {
            guard offset + bytes <= data.count else { throw LearnError.checkpoint("\(path) is truncated; delete it to redo that sequence") }
            defer { offset += bytes }
            return data.subdata(in: offset..<(offset + bytes))
        }
        return try (0..<layers).map { _ in
            try (0..<shadows).map { _ in
                try (0..<heads).map { _ in
                    let n = Int(UInt32(littleEndian: try next(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
                    let floats = try next(n * MemorySample.floats * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    return (0..<n).map { MemorySample(floats[($0 * MemorySample.floats)..<(($0 + 1) * MemorySample.floats)]) }
                }
            }
        }
    }
}
