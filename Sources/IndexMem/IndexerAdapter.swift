// IndexMem — public facade. Apache-2.0.
//
// An adapter file holds the learned parts of IndexMem for one model: the indexer's
// parameters per budgeted layer and, once `indexmem train memory` has run, its latent memory, as a safetensors file with JSON metadata (the model it was
// trained for, shapes, the data recipe, the command). It is loaded once per Engine and
// shared read-only by every Session.

import Foundation
import IndexMemCache
import IndexMemSafetensors

// MARK: - Errors

public enum AdapterError: Error, CustomStringConvertible, Sendable {
    case notFound(path: String)
    case unreadable(path: String, SafetensorsError)
    case notAnAdapter(path: String, reason: String)
    case wrongModel(path: String, adapterModel: String, adapterSHA: String, model: String, modelSHA: String)
    case incompatible(path: String, reason: String)
    /// The adapter lacks the indexer variant a policy names.
    case missingIndexer(path: String, variant: String, policy: String)
    /// The adapter holds no latent memory, which `--memory` asks for.
    case missingMemory(path: String)

    public var description: String {
        switch self {
        case .notFound(let p):
            return "no indexer adapter at \(p): train one with `indexmem train` or pass --adapter FILE"
        case .unreadable(let p, let e): return "cannot load adapter \(p): \(e)"
        case .notAnAdapter(let p, let r): return "\(p) is not an IndexMem adapter: \(r)"
        case .wrongModel(let p, let am, let asha, let m, let msha):
            return "adapter \(p) was trained for \(am) (sha256 \(asha.prefix(12))…), not for \(m) (sha256 \(msha.prefix(12))…)"
        case .incompatible(let p, let r): return "adapter \(p) does not fit this model: \(r)"
        case .missingIndexer(let p, let v, let policy):
            return "adapter \(p) holds no \(v) indexer, which policy '\(policy)' reads: train one with `indexmem train` or choose the other variant"
        case .missingMemory(let p):
            return "adapter \(p) holds no latent memory: add one with `indexmem train memory --adapter \(p)`, or run with --memory off"
        }
    }
}

// MARK: - Shared parameters

/// Indexer (and latent memory) parameters loaded once and shared read-only by every session
/// (compared by identity).
public final class SharedIndexer: @unchecked Sendable, Equatable {
    public let parameters: IndexerParameters
    /// Per budgeted layer; empty when the adapter holds no memory.
    public let memory: [LatentMemoryParameters]
    public let metadata: [String: String]
    public let path: String

    public init(parameters: IndexerParameters, memory: [LatentMemoryParameters] = [], metadata: [String: String] = [:], path: String = "") {
        self.parameters = parameters
        self.memory = memory
        self.metadata = metadata
        self.path = path
    }

    public static func == (a: SharedIndexer, b: SharedIndexer) -> Bool { a === b }
}

// MARK: - File format

public enum IndexerAdapterFile {
    public static let format = "indexmem-adapter"
    public static let version = "1"

    /// Where `--policy indexmem` looks without `--adapter`: `adapters/<model file name>.indexmem.safetensors`
    /// beside the working directory, or in the repository that holds the model's `models/` folder.
    public static func defaultPath(modelPath: String) -> String {
        let url = URL(fileURLWithPath: modelPath)
        let name = url.deletingPathExtension().lastPathComponent + ".indexmem.safetensors"
        let local = "adapters/" + name
        if FileManager.default.fileExists(atPath: local) { return local }
        let beside = url.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("adapters").appendingPathComponent(name).path
        return FileManager.default.fileExists(atPath: beside) ? beside : local
    }

    /// The safetensors contents of `parameters` with `metadata` (shape keys are added).
    /// Tensor names carry the budgeted-layer index: a part trained on `--layers a-b` starts at `firstLayer` a.
    public static func encode(_ p: IndexerParameters, metadata: [String: String], firstLayer: Int = 0) -> Safetensors {
        var file = Safetensors(metadata: metadata)
        file.metadata["format"] = format
        file.metadata["version"] = version
        file.metadata["hidden_dimension"] = String(p.hiddenDimension)
        file.metadata["kv_heads"] = String(p.kvHeads)
        file.metadata["head_dimension"] = String(p.headDimension)
        file.metadata["budgeted_layers"] = String(p.layerCount)
        file.metadata["indexer_heads"] = String(p.indexerHeads)
        file.metadata["key_dimension"] = String(p.keyDimension)
        file.metadata["temperature"] = String(p.temperature)
        file.metadata["variants"] = IndexerParameters.Variant.allCases.filter { p.has($0) }.map(\.rawValue).joined(separator: ",")
        for (l, w) in p.staticWeights.enumerated() {
            file.tensors["static.\(firstLayer + l).weight"] = SafetensorsTensor(shape: [p.kvHeads, p.staticFeatures], values: w)
        }
        for l in p.keyProjection.indices {
            let prefix = "query.\(firstLayer + l)."
            file.tensors[prefix + "query_projection"] = SafetensorsTensor(shape: [p.indexerHeads * p.keyDimension, p.hiddenDimension], values: p.queryProjection[l])
            file.tensors[prefix + "key_projection"] = SafetensorsTensor(shape: [p.keyDimension, p.hiddenDimension], values: p.keyProjection[l])
            file.tensors[prefix + "head_weights"] = SafetensorsTensor(shape: [p.indexerHeads, p.hiddenDimension], values: p.headWeights[l])
        }
        return file
    }

    /// Parameters and metadata of an adapter file's contents.
    public static func decode(_ file: Safetensors, path: String) throws(AdapterError) -> (IndexerParameters, [String: String]) {
        let m = file.metadata
        guard m["format"] == format else { throw .notAnAdapter(path: path, reason: "metadata format is \(m["format"] ?? "missing"), expected \(format)") }
        guard m["version"] == version else { throw .notAnAdapter(path: path, reason: "version \(m["version"] ?? "missing") is not \(version)") }
        func int(_ key: String, _ range: ClosedRange<Int>) throws(AdapterError) -> Int {
            guard let v = m[key].flatMap({ Int($0) }), range.contains(v) else {
                throw .notAnAdapter(path: path, reason: "metadata \(key) = \(m[key] ?? "missing") is not an integer in \(range)")
            }
            return v
        }
        let hidden = try int("hidden_dimension", 1...65536), kvHeads = try int("kv_heads", 1...1024)
        let headDimension = try int("head_dimension", 1...4096), layers = try int("budgeted_layers", 0...1024)
        let heads = try int("indexer_heads", 0...256), keyDimension = try int("key_dimension", 0...1024)
        guard let temperature = m["temperature"].flatMap({ Float($0) }), temperature.isFinite, temperature > 0 else {
            throw .notAnAdapter(path: path, reason: "metadata temperature is not a positive number")
        }
        var p = IndexerParameters(hiddenDimension: hidden, kvHeads: kvHeads, headDimension: headDimension,
                                  indexerHeads: heads, keyDimension: keyDimension, temperature: temperature)
        let variants = Set((m["variants"] ?? "").split(separator: ",").map(String.init))
        try readingTensors(path: path) {
            if variants.contains(IndexerParameters.Variant.writeTime.rawValue) {
                p.staticWeights = try (0..<layers).map { l throws(SafetensorsError) in try file.tensor("static.\(l).weight", shape: [kvHeads, p.staticFeatures]) }
            }
            if variants.contains(IndexerParameters.Variant.queryAware.rawValue) {
                guard heads > 0, keyDimension > 0 else { throw AdapterError.notAnAdapter(path: path, reason: "a query indexer needs indexer_heads and key_dimension") }
                p.queryProjection = try (0..<layers).map { l throws(SafetensorsError) in try file.tensor("query.\(l).query_projection", shape: [heads * keyDimension, hidden]) }
                p.keyProjection = try (0..<layers).map { l throws(SafetensorsError) in try file.tensor("query.\(l).key_projection", shape: [keyDimension, hidden]) }
                p.headWeights = try (0..<layers).map { l throws(SafetensorsError) in try file.tensor("query.\(l).head_weights", shape: [heads, hidden]) }
            }
        }
        for w in p.staticWeights + p.queryProjection + p.keyProjection + p.headWeights where !w.allSatisfy(\.isFinite) {
            throw .notAnAdapter(path: path, reason: "a tensor holds NaN or infinity")
        }
        guard p.layerCount > 0 else { throw .notAnAdapter(path: path, reason: "it holds no indexer (variants: \(m["variants"] ?? "none"))") }
        return (p, m)
    }

    /// Adds the latent memory of every budgeted layer (tensors `memory.L.*`, metadata `memory_rank`).
    public static func encodeMemory(_ memory: [LatentMemoryParameters], into file: inout Safetensors, metadata: [String: String] = [:]) {
        guard let first = memory.first else { return }
        file.metadata["memory_rank"] = String(first.rank)
        file.metadata["memory_layers"] = String(memory.count)
        for (key, value) in metadata { file.metadata[key] = value }
        for (l, m) in memory.enumerated() {
            file.tensors["memory.\(l).projection"] = SafetensorsTensor(shape: [m.kvHeads, m.rank, m.headDimension], values: m.projection)
            file.tensors["memory.\(l).gate"] = SafetensorsTensor(shape: [m.kvHeads, LatentMemoryParameters.gateInputs], values: m.gate)
            file.tensors["memory.\(l).tilt"] = SafetensorsTensor(shape: [m.kvHeads], values: m.tilt)
        }
    }

    /// The latent memory of an adapter's contents: empty when it holds none.
    public static func decodeMemory(_ file: Safetensors, path: String, indexer p: IndexerParameters) throws(AdapterError) -> [LatentMemoryParameters] {
        guard let rankText = file.metadata["memory_rank"] else { return [] }
        guard let rank = Int(rankText), (1...p.headDimension).contains(rank) else {
            throw .notAnAdapter(path: path, reason: "metadata memory_rank = \(rankText) is not an integer in 1...\(p.headDimension)")
        }
        guard file.metadata["memory_layers"] == String(p.layerCount) else {
            throw .notAnAdapter(path: path, reason: "metadata memory_layers = \(file.metadata["memory_layers"] ?? "missing"), expected \(p.layerCount) (one memory per budgeted layer)")
        }
        let h = p.kvHeads, d = p.headDimension
        return try readingTensors(path: path) {
            try (0..<p.layerCount).map { l in
                let m = LatentMemoryParameters(
                    rank: rank, headDimension: d, kvHeads: h,
                    projection: try file.tensor("memory.\(l).projection", shape: [h, rank, d]),
                    gate: try file.tensor("memory.\(l).gate", shape: [h, LatentMemoryParameters.gateInputs]),
                    tilt: try file.tensor("memory.\(l).tilt", shape: [h]))
                if let reason = m.mismatch(kvHeads: h, headDimension: d) { throw AdapterError.notAnAdapter(path: path, reason: "layer \(l): \(reason)") }
                return m
            }
        }
    }

    /// Runs `body`, which reads tensors of the adapter at `path`, with its errors as `AdapterError`.
    private static func readingTensors<T>(path: String, _ body: () throws -> T) throws(AdapterError) -> T {
        do {
            return try body()
        } catch let e as SafetensorsError {
            throw .unreadable(path: path, e)
        } catch let e as AdapterError {
            throw e
        } catch {
            throw .notAnAdapter(path: path, reason: "\(error)")
        }
    }

    public static func read(path: String) throws(AdapterError) -> (IndexerParameters, [LatentMemoryParameters], [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound(path: path) }
        let file: Safetensors
        do { file = try Safetensors(path: path) } catch { throw .unreadable(path: path, error) }
        let (parameters, metadata) = try decode(file, path: path)
        return (parameters, try decodeMemory(file, path: path, indexer: parameters), metadata)
    }
}
