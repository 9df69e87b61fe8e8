// IndexMem — learning. Apache-2.0.
//
// `indexmem train`: teacher passes over deterministic training sequences, layer-local fits,
// one adapter file. The write-time indexer is fitted listwise by default (Adam on the KL
// between the teacher's attention over a sequence's entries and the softmax of the scores:
// only the top of the ranking decides what stays, and ridge regression on the log target
// spent itself on the bulk; on the development samples the listwise fit kept more needles),
// with the closed-form ridge fit kept as `--static-fit ridge`. Resumable: the statistics accumulated so far are checkpointed every few
// sequences (atomically), and a resumed run adds the same sequences in the same order, so it
// ends with the same adapter as an uninterrupted one. Layers can be trained apart
// (`layers`), on different machines, and joined with `mergeAdapters`.

import Foundation
import IndexMem
import IndexMemCache
import IndexMemKernels
import IndexMemSafetensors

// MARK: - Options

public struct TrainingOptions: Sendable, Codable, Equatable {
    /// Training sequences (teacher passes).
    public var sequences = 48
    /// Tokens per sequence (at most).
    public var length = 2048
    /// Block size of the teacher pass (bounded mode's prefill chunk).
    public var block = 256
    /// Protected recent window: closer queries do not count towards an entry's future attention.
    public var window = 64
    /// Protected first tokens, left out of the fit.
    public var sinks = 4
    public var seed: UInt64 = 0
    /// Budgeted layers to train (nil: all).
    public var layers: ClosedRange<Int>? = nil
    /// Every this many sequences is held out to choose the ridge strength.
    public var validationEvery = 5
    /// Ridge strengths tried.
    public var lambdas: [Double] = [1e-3, 1e-2, 1e-1, 1, 10]
    /// Target of the write-time fit: `question` (largest attention from the sequence's final
    /// request), `max` (largest future attention) or `mean`.
    public var target = "question"
    /// How the write-time indexer is fitted: `ridge` (closed form, log target) or `listwise`
    /// (Adam on KL(teacher || softmax(score)) over each sequence's entries).
    public var staticFit = "listwise"
    /// Listwise fit: Adam steps per sequence and peak learning rate.
    public var staticSteps = 16
    public var staticLearningRate: Float = 1e-3
    public var checkpointEvery = 4
    /// Query-aware indexer: heads, key dimension, queries sampled per block, peak learning rate.
    public var indexerHeads = 2
    public var keyDimension = 16
    public var queriesPerBlock = 64
    public var learningRate: Float = 2e-3
    /// Adam steps per block example.
    public var stepsPerBlock = 1

    public init() {}

    /// What must match for a checkpoint to be resumed.
    var fingerprint: String {
        "recipe=\(TrainingSampleMaker.recipeVersion) seq=\(sequences) len=\(length) block=\(block) window=\(window) sinks=\(sinks) seed=\(seed) layers=\(layers.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "all") val=\(validationEvery) target=\(target) fit=\(staticFit)\(staticFit == "listwise" ? " fitsteps=\(staticSteps) fitlr=\(staticLearningRate)" : "") heads=\(indexerHeads) key=\(keyDimension) q=\(queriesPerBlock) lr=\(learningRate) steps=\(stepsPerBlock)"
    }
}

// MARK: - Trainer

public final class IndexerTrainer {
    public let engine: Engine
    public let corpus: TrainingCorpus
    public let options: TrainingOptions
    /// Called with a line of progress (plain text).
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    /// Called after each sequence: (sequences done, total, tokens/s, seconds left).
    public var progress: ((Int, Int, Double, Double) -> Void)? = nil
    /// Stop after this many sequences in this run (tests simulate a killed run).
    public var stopAfter: Int? = nil

    public init(engine: Engine, corpus: TrainingCorpus, options: TrainingOptions) {
        self.engine = engine
        self.corpus = corpus
        self.options = options
    }

    var budgetedLayerCount: Int { engine.configuration.globalLayers.count }

    /// The budgeted layers to train: `options.layers` within the model's (empty when outside them).
    var layerRange: Range<Int> {
        guard let l = options.layers else { return 0..<budgetedLayerCount }
        let lower = min(l.lowerBound, budgetedLayerCount)
        return lower..<max(lower, min(l.upperBound + 1, budgetedLayerCount))
    }

    /// Runs (or resumes) training and writes the adapter. Returns false when stopped early by `stopAfter`.
    @discardableResult
    public func train(out: String, command: String) throws -> Bool {
        let c = engine.configuration
        let range = layerRange
        guard !range.isEmpty else { throw LearnError.invalidArgument("no budgeted layers in --layers for this model (\(budgetedLayerCount) budgeted layers)") }
        let features = c.embeddingDimension + c.kvHeads * c.headDimension + 1
        let checkpointDir = out + ".checkpoint"
        let fresh = range.map { layer in
            QueryIndexerWeights(heads: options.indexerHeads, keyDimension: options.keyDimension, hidden: c.embeddingDimension,
                                seed: options.seed &+ 0x5EED &+ UInt64(layer))
        }
        let staticCount = c.kvHeads * features
        var state = try Checkpoint.load(directory: checkpointDir, fingerprint: options.fingerprint, layers: range, fresh: fresh,
                                        staticCount: staticCount)
            ?? Checkpoint(next: 0, tokens: 0,
                          train: range.map { _ in NormalEquations(features: features, outputs: c.kvHeads) },
                          validation: range.map { _ in NormalEquations(features: features, outputs: c.kvHeads) },
                          query: fresh, adam: fresh.map { AdamState(count: $0.count) },
                          listwise: range.map { _ in [Float](repeating: 0, count: staticCount) },
                          listwiseAdam: range.map { _ in AdamState(count: staticCount) })
        let listwise = options.staticFit == "listwise"
        var listwiseLoss = [Float](repeating: 0, count: range.count)
        let blocksPerSequence = max(1, (options.length + options.block - 1) / options.block - 1)
        let totalSteps = options.sequences * blocksPerSequence * options.stepsPerBlock
        if state.next > 0 { log("train: resuming from \(checkpointDir) at sequence \(state.next)/\(options.sequences)") }
        let maker = TrainingSampleMaker(engine: engine, corpus: corpus, length: options.length)
        let start = Date()
        var doneHere = 0, tokensHere = 0
        while state.next < options.sequences {
            if let stopAfter, doneHere >= stopAfter { return false }
            let index = state.next
            let sequence = maker.sample(seed: options.seed, index: index)
            let kind = sequence.kind, tokens = sequence.tokens
            let records = try TeacherPass.run(engine: engine, tokens: tokens, requestStart: sequence.requestStart, block: options.block,
                                              window: options.window, layers: range)
            let held = options.validationEvery > 0 && index % options.validationEvery == options.validationEvery - 1
            // The ridge fit's statistics (the listwise fit steps below, with the query-aware indexer's).
            for record in records where !listwise {
                let slot = record.budgetedLayer - range.lowerBound
                let (columns, targets, rows) = staticRows(record)
                if held { state.validation[slot].add(columns: columns, targets: targets, count: rows, pool: engine.pool) }
                else { state.train[slot].add(columns: columns, targets: targets, count: rows, pool: engine.pool) }
            }
            // Query-aware indexer: Adam steps on this sequence's blocks (held-out ones only measure), one layer per thread.
            var losses = [Float](repeating: 0, count: records.count)
            var counts = [Int](repeating: 0, count: records.count)
            var staticLosses = [Float](repeating: 0, count: records.count)
            let examplesSeed = options.seed &+ UInt64(index) &* 7919
            let staticTotal = options.sequences * options.staticSteps
            state.listwise.withUnsafeMutableBufferPointer { staticWeights in
            state.listwiseAdam.withUnsafeMutableBufferPointer { staticAdam in
            staticLosses.withUnsafeMutableBufferPointer { staticLossOut in
            state.query.withUnsafeMutableBufferPointer { weights in
                state.adam.withUnsafeMutableBufferPointer { adam in
                    losses.withUnsafeMutableBufferPointer { lossOut in
                        counts.withUnsafeMutableBufferPointer { countOut in
                            engine.pool.parallelFor(records.count) { recordRange in
                                for i in recordRange {
                                    let record = records[i]
                                    let slot = record.budgetedLayer - range.lowerBound
                                    for example in self.queryExamples(record, seed: examplesSeed &+ UInt64(record.budgetedLayer)) {
                                        for _ in 0..<(held ? 1 : self.options.stepsPerBlock) {
                                            let (loss, gradient) = QueryIndexerLoss.lossAndGradient(weights[slot], example)
                                            lossOut[i] += loss
                                            countOut[i] += 1
                                            if held { continue }
                                            let rate = AdamState.rate(peak: self.options.learningRate, step: adam[slot].step, total: totalSteps)
                                            adam[slot].update(&weights[slot].flat, gradient: gradient, rate: rate)
                                        }
                                    }
                                    if listwise {
                                        staticLossOut[i] = self.listwiseSteps(record, weights: &staticWeights[slot], adam: &staticAdam[slot],
                                                                              steps: held ? 0 : self.options.staticSteps, total: staticTotal)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            }
            }
            }
            if listwise && held { for (i, r) in records.enumerated() { listwiseLoss[r.budgetedLayer - range.lowerBound] += staticLosses[i] } }
            let meanLoss = zip(losses, counts).reduce(0) { $0 + ($1.1 > 0 ? $1.0 / Float($1.1) : 0) } / Float(max(records.count, 1))
            let staticNote = listwise ? String(format: ", static KL %.3f", staticLosses.reduce(0, +) / Float(max(records.count, 1) * c.kvHeads)) : ""
            state.next += 1
            state.tokens += tokens.count
            doneHere += 1
            tokensHere += tokens.count
            let elapsed = Date().timeIntervalSince(start)
            let rate = Double(tokensHere) / max(elapsed, 1e-9)
            let left = Double(options.sequences - state.next) * elapsed / Double(doneHere)
            log(String(format: "train: sequence %d/%d (%@, %d tokens, request at %d%@) indexer KL %.4f%@, %.0f tokens/s, ETA %@", state.next, options.sequences,
                       kind.rawValue, tokens.count, sequence.requestStart, held ? ", held out" : "", meanLoss, staticNote, rate, Self.duration(left)))
            progress?(state.next, options.sequences, rate, left)
            if state.next % options.checkpointEvery == 0 || state.next == options.sequences {
                try state.save(directory: checkpointDir, fingerprint: options.fingerprint, layers: range)
            }
        }
        // Fit: choose the ridge strength per layer on the held-out sequences, refit on all.
        var weights: [[Float]] = []
        var choices: [String] = []
        for (slot, layer) in range.enumerated() where listwise {
            weights.append(state.listwise[slot])
            log(String(format: "train: layer %d: listwise fit, held-out KL summed over sequences %.4f (this run)", layer, listwiseLoss[slot]))
        }
        for (slot, layer) in range.enumerated() where !listwise {
            let train = state.train[slot], validation = state.validation[slot]
            var best = (lambda: options.lambdas[0], error: Double.infinity)
            if validation.rows > 0 {
                for lambda in options.lambdas {
                    let e = validation.meanSquaredError(train.solve(lambda: lambda))
                    if e < best.error { best = (lambda, e) }
                }
            }
            let w = (train + validation).solve(lambda: best.lambda)
            weights.append(w.flatMap { $0.map(Float.init) })
            choices.append("\(layer):\(best.lambda)")
            log(String(format: "train: layer %d: lambda %g, held-out mse %.4f (%d rows)", layer, best.lambda, best.error, validation.rows))
        }
        var parameters = IndexerParameters(hiddenDimension: c.embeddingDimension, kvHeads: c.kvHeads, headDimension: c.headDimension)
        parameters.staticWeights = weights
        parameters.indexerHeads = options.indexerHeads
        parameters.keyDimension = options.keyDimension
        parameters.queryProjection = state.query.map(\.query)
        parameters.keyProjection = state.query.map(\.key)
        parameters.headWeights = state.query.map(\.headWeights)
        var metadata = baseMetadata(command: command, tokens: state.tokens)
        metadata["static_fit"] = options.staticFit
        if !listwise { metadata["ridge_lambdas"] = choices.joined(separator: ",") }
        metadata["elapsed_seconds"] = String(format: "%.0f", Date().timeIntervalSince(start))
        if range != 0..<budgetedLayerCount {
            metadata["partial_layers"] = "\(range.lowerBound)-\(range.upperBound - 1)"
            metadata["budgeted_layers_total"] = String(budgetedLayerCount)
        }
        let file = IndexerAdapterFile.encode(parameters, metadata: metadata, firstLayer: range.lowerBound)
        try file.write(to: out)
        log("train: wrote \(out) (\(file.tensors.count) tensors, \(parameters.bytes) bytes)")
        return true
    }

    /// The entries the write-time fit learns from: past the sinks, and read by the final
    /// request (target `question`) or by some later query beyond the window.
    func staticEntries(_ r: LayerRecord) -> [Int] {
        let asked = options.target == "question"
        return (0..<r.tokens).filter { $0 >= options.sinks && (asked ? $0 < r.requestStart - options.window : r.futureQueries[$0] > 0) }
    }

    /// The attention KV head `g` pays entry `j` under the fit's target (entries of `staticEntries`).
    func staticTarget(_ r: LayerRecord, head g: Int, entry j: Int) -> Float {
        switch options.target {
        case "question": return r.requestMax[g][j]
        case "mean": return r.futureSum[g][j] / Float(r.futureQueries[j])
        default: return r.futureMax[g][j]
        }
    }

    /// Features (column-major) and log targets of one layer's entries, for the ridge fit.
    func staticRows(_ r: LayerRecord) -> (columns: [Float], targets: [Float], rows: Int) {
        let rows = staticEntries(r)
        let n = rows.count, d = r.hiddenDimension, kw = r.kvHeads * r.headDimension, p = d + kw + 1
        var columns = [Float](repeating: 0, count: p * n)
        var targets = [Float](repeating: 0, count: r.kvHeads * n)
        for (i, j) in rows.enumerated() {
            for f in 0..<d { columns[f * n + i] = r.hidden[j * d + f] }
            for f in 0..<kw { columns[(d + f) * n + i] = r.plainKeys[j * kw + f] }
            columns[(p - 1) * n + i] = 1
            for g in 0..<r.kvHeads { targets[g * n + i] = logf(staticTarget(r, head: g, entry: j) + 1e-4) }
        }
        return (columns, targets, n)
    }

    /// Listwise fit of one layer's write-time weights on one sequence: `steps` Adam steps on
    /// each KV head's KL loss (0: only measure). Returns the loss before the steps, summed over heads.
    func listwiseSteps(_ r: LayerRecord, weights: inout [Float], adam: inout AdamState, steps: Int, total: Int) -> Float {
        let rows = staticEntries(r)
        let n = rows.count, d = r.hiddenDimension, kw = r.kvHeads * r.headDimension, p = d + kw + 1
        guard n > 1 else { return 0 }
        var x = [Float](repeating: 0, count: n * p)
        for (i, j) in rows.enumerated() {
            x.replaceSubrange((i * p)..<(i * p + d), with: r.hidden[(j * d)..<((j + 1) * d)])
            x.replaceSubrange((i * p + d)..<(i * p + d + kw), with: r.plainKeys[(j * kw)..<((j + 1) * kw)])
            x[i * p + p - 1] = 1
        }
        var teachers = [[Float]](repeating: [], count: r.kvHeads)
        for g in 0..<r.kvHeads {
            var t = rows.map { staticTarget(r, head: g, entry: $0) }
            let sum = t.reduce(0, +)
            if sum > 0 { for i in t.indices { t[i] /= sum } }
            teachers[g] = sum > 0 ? t : []
        }
        var gradient = [Float](repeating: 0, count: weights.count)
        var scratch = [Float](repeating: 0, count: n)
        var first: Float = 0
        for step in 0...steps {
            var loss: Float = 0
            x.withUnsafeBufferPointer { xs in
                weights.withUnsafeBufferPointer { w in
                    gradient.withUnsafeMutableBufferPointer { g in
                        scratch.withUnsafeMutableBufferPointer { s in
                            for head in 0..<r.kvHeads where !teachers[head].isEmpty {
                                loss += teachers[head].withUnsafeBufferPointer { t in
                                    ListwiseStaticLoss.lossAndGradient(weights: w.baseAddress! + head * p, features: xs.baseAddress!, rows: n,
                                                                       featureCount: p, teacher: t.baseAddress!,
                                                                       gradient: g.baseAddress! + head * p, scratch: s.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
            if step == 0 { first = loss }
            if step == steps { break }
            let rate = AdamState.rate(peak: options.staticLearningRate, step: adam.step, total: total)
            adam.update(&weights, gradient: gradient, rate: rate)
        }
        return first
    }

    /// The query-aware indexer's examples of one layer: for every block with blocks after it,
    /// its sampled queries, the entries bounded mode may evict after it, and the attention the
    /// later blocks pay those entries (summed over KV heads: the indexer is shared by them).
    func queryExamples(_ r: LayerRecord, seed: UInt64) -> [IndexerExample] {
        var rng = SplitMix64(seed: seed)
        let d = r.hiddenDimension
        var out: [IndexerExample] = []
        for b in 0..<(r.blockStarts.count - 1) {
            let start = r.blockStarts[b], end = r.blockStarts[b + 1]
            let candidates = Array(options.sinks..<max(options.sinks, end - options.window))
            guard candidates.count > 1 else { continue }
            var teacher = [Float](repeating: 0, count: candidates.count)
            for later in (b + 1)..<r.blockMass.count {
                let mass = r.blockMass[later], stride = mass.count / r.kvHeads
                for g in 0..<r.kvHeads { for (i, j) in candidates.enumerated() { teacher[i] += mass[g * stride + j] } }
            }
            let total = teacher.reduce(0, +)
            guard total > 0 else { continue }
            for i in teacher.indices { teacher[i] /= total }
            let span = end - start, q = min(options.queriesPerBlock, span)
            var picks = Array(start..<end)
            for i in 0..<q { picks.swapAt(i, i + rng.below(span - i)) }
            let chosen = picks[0..<q].sorted()
            var queries = [Float](); queries.reserveCapacity(q * d)
            for t in chosen { queries.append(contentsOf: r.hidden[(t * d)..<((t + 1) * d)]) }
            var entries = [Float](); entries.reserveCapacity(candidates.count * d)
            for j in candidates { entries.append(contentsOf: r.hidden[(j * d)..<((j + 1) * d)]) }
            out.append(IndexerExample(queries: queries, entries: entries, teacher: teacher, queryCount: q, entryCount: candidates.count))
        }
        return out
    }

    func baseMetadata(command: String, tokens: Int) -> [String: String] {
        let c = engine.configuration
        return [
            "model": URL(fileURLWithPath: engine.path).lastPathComponent, "model_sha256": engine.sha256,
            "architecture": c.architecture, "model_layers": c.globalLayers.map(String.init).joined(separator: ","),
            "block": String(options.block), "window": String(options.window), "sinks": String(options.sinks),
            "sequence_length": String(options.length), "sequences": String(options.sequences), "seed": String(options.seed),
            "target": options.target, "data_recipe": "v\(TrainingSampleMaker.recipeVersion) text/recall(every fact asked)/repeat samples over \(corpus.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ","))",
            "data_sha256": corpus.sha256, "data_bytes": String(corpus.bytes), "data_tokens": String(tokens),
            "command": command, "created": ISO8601DateFormatter().string(from: Date()),
        ]
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds)
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}

// MARK: - Merging layer shards

extension IndexerTrainer {
    /// Joins adapters trained on disjoint `--layers` ranges of the same model and data into one.
    public static func mergeAdapters(_ paths: [String], out: String) throws {
        var merged = Safetensors()
        var covered = Set<Int>()
        var total: Int? = nil
        for path in paths {
            let file: Safetensors
            do { file = try Safetensors(path: path) } catch { throw LearnError.invalidArgument("\(path): \(error)") }
            guard let part = file.metadata["partial_layers"] ?? file.metadata["budgeted_layers"].map({ "0-\((Int($0) ?? 1) - 1)" }) else {
                throw LearnError.invalidArgument("\(path) is not an IndexMem adapter")
            }
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            guard bounds.count == 2 else { throw LearnError.invalidArgument("\(path): bad partial_layers '\(part)'") }
            let layers = Set(bounds[0]...bounds[1])
            guard covered.isDisjoint(with: layers) else { throw LearnError.invalidArgument("\(path) overlaps layers already merged") }
            if let sha = merged.metadata["model_sha256"], sha != file.metadata["model_sha256"] {
                throw LearnError.invalidArgument("\(path) was trained for another model (\(file.metadata["model"] ?? "?"))")
            }
            let fileTotal = Int(file.metadata["budgeted_layers_total"] ?? file.metadata["budgeted_layers"] ?? "") ?? 0
            if let total, total != fileTotal { throw LearnError.invalidArgument("\(path) has \(fileTotal) budgeted layers, others \(total)") }
            total = fileTotal
            covered.formUnion(layers)
            if merged.metadata.isEmpty { merged.metadata = file.metadata }
            for (name, t) in file.tensors { merged.tensors[name] = t }
        }
        guard let total, covered == Set(0..<total) else {
            throw LearnError.invalidArgument("the parts cover layers \(covered.sorted()) of \(total ?? 0); every budgeted layer is needed")
        }
        merged.metadata["partial_layers"] = nil
        merged.metadata["budgeted_layers_total"] = nil
        merged.metadata["budgeted_layers"] = String(total)
        try merged.write(to: out)
    }
}

// MARK: - Checkpoints

struct Checkpoint {
    var next: Int
    var tokens: Int
    var train: [NormalEquations]
    var validation: [NormalEquations]
    var query: [QueryIndexerWeights]
    var adam: [AdamState]
    /// Listwise write-time weights (kvHeads * features) and their Adam state, per layer.
    var listwise: [[Float]]
    var listwiseAdam: [AdamState]

    /// Writes the statistics into a fresh directory, then renames it over the old one.
    func save(directory: String, fingerprint: String, layers: Range<Int>) throws {
        let fm = FileManager.default
        let temporary = directory + ".tmp"
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        for (slot, layer) in layers.enumerated() {
            var data = Data()
            for e in [train[slot], validation[slot]] {
                let header = [Int64(e.features), Int64(e.outputs), Int64(e.rows)]
                header.withUnsafeBytes { data.append(contentsOf: $0) }
                for array in [e.gram, e.cross, e.targetSquares] { array.withUnsafeBytes { data.append(contentsOf: $0) } }
            }
            var step = Int64(adam[slot].step)
            withUnsafeBytes(of: &step) { data.append(contentsOf: $0) }
            for array in [query[slot].flat, adam[slot].first, adam[slot].second] { array.withUnsafeBytes { data.append(contentsOf: $0) } }
            var staticStep = Int64(listwiseAdam[slot].step)
            withUnsafeBytes(of: &staticStep) { data.append(contentsOf: $0) }
            for array in [listwise[slot], listwiseAdam[slot].first, listwiseAdam[slot].second] { array.withUnsafeBytes { data.append(contentsOf: $0) } }
            try data.write(to: URL(fileURLWithPath: "\(temporary)/layer-\(layer).bin"))
        }
        let state: [String: Any] = ["next": next, "tokens": tokens, "fingerprint": fingerprint]
        try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]).write(to: URL(fileURLWithPath: "\(temporary)/state.json"))
        let old = directory + ".old"
        try? fm.removeItem(atPath: old)
        if fm.fileExists(atPath: directory) { try fm.moveItem(atPath: directory, toPath: old) }
        try fm.moveItem(atPath: temporary, toPath: directory)
        try? fm.removeItem(atPath: old)
    }

    static func load(directory: String, fingerprint: String, layers: Range<Int>, fresh: [QueryIndexerWeights],
                     staticCount: Int) throws -> Checkpoint? {
        let stateURL = URL(fileURLWithPath: "\(directory)/state.json")
        guard let data = try? Data(contentsOf: stateURL) else { return nil }
        guard let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let next = state["next"] as? Int, let tokens = state["tokens"] as? Int, let saved = state["fingerprint"] as? String else {
            throw LearnError.checkpoint("\(stateURL.path) is malformed; delete \(directory) to start over")
        }
        guard saved == fingerprint else {
            throw LearnError.checkpoint("\(directory) was made with other options (\(saved)); delete it or use the same options (\(fingerprint))")
        }
        var train: [NormalEquations] = [], validation: [NormalEquations] = []
        var query: [QueryIndexerWeights] = [], adam: [AdamState] = []
        var listwise: [[Float]] = [], listwiseAdam: [AdamState] = []
        for (slot, layer) in layers.enumerated() {
            guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: "\(directory)/layer-\(layer).bin")) else {
                throw LearnError.checkpoint("\(directory) has no statistics of layer \(layer)")
            }
            var offset = 0
            func read<T>(_ count: Int, _ type: T.Type) throws -> [T] {
                let size = count * MemoryLayout<T>.stride
                guard offset + size <= bytes.count else { throw LearnError.checkpoint("\(directory)/layer-\(layer).bin is truncated") }
                let values = bytes[offset..<(offset + size)].withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
                offset += size
                return values
            }
            var pair: [NormalEquations] = []
            for _ in 0..<2 {
                let h = try read(3, Int64.self)
                var e = NormalEquations(features: Int(h[0]), outputs: Int(h[1]))
                e.rows = Int(h[2])
                e.gram = try read(e.features * e.features, Double.self)
                e.cross = try read(e.outputs * e.features, Double.self)
                e.targetSquares = try read(e.outputs, Double.self)
                pair.append(e)
            }
            train.append(pair[0])
            validation.append(pair[1])
            var weights = fresh[slot]
            var moments = AdamState(count: weights.count)
            moments.step = Int(try read(1, Int64.self)[0])
            weights.flat = try read(weights.count, Float.self)
            moments.first = try read(weights.count, Float.self)
            moments.second = try read(weights.count, Float.self)
            query.append(weights)
            adam.append(moments)
            var staticMoments = AdamState(count: staticCount)
            staticMoments.step = Int(try read(1, Int64.self)[0])
            listwise.append(try read(staticCount, Float.self))
            staticMoments.first = try read(staticCount, Float.self)
            staticMoments.second = try read(staticCount, Float.self)
            listwiseAdam.append(staticMoments)
        }
        return Checkpoint(next: next, tokens: tokens, train: train, validation: validation, query: query, adam: adam,
                          listwise: listwise, listwiseAdam: listwiseAdam)
    }
}
