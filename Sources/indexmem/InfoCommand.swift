// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem
import IndexMemGGUF

// MARK: - info

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a model's metadata, tensors and sizes.")

    @OptionGroup var model: ModelArguments
    @Flag(name: .long, help: "Print one JSON object.") var json = false
    @Flag(name: .long, help: "List every tensor.") var tensors = false

    func run() throws {
        let engine = try model.loadEngine(progress: !json)
        let file = engine.file
        let c = engine.configuration
        var byType: [String: (count: Int, bytes: Int)] = [:]
        var parameters = 0
        for t in file.tensors {
            byType[t.type.description, default: (0, 0)].count += 1
            byType[t.type.description, default: (0, 0)].bytes += t.byteCount
            parameters += t.elementCount
        }
        let metadata: [String: Any] = Dictionary(uniqueKeysWithValues: file.metadataKeys.compactMap { key -> (String, Any)? in
            guard let v = file.metadata[key] else { return nil }
            return (key, Self.summary(v))
        })
        let object: [String: Any] = [
            "path": engine.path, "gguf_version": Int(file.version), "file_bytes": file.bytes.count,
            "architecture": c.architecture, "name": (try? file.string("general.name")) ?? NSNull(),
            "parameters": parameters,
            "configuration": [
                "layers": c.layerCount, "embedding": c.embeddingDimension, "feed_forward": c.feedForwardDimension,
                "query_heads": c.queryHeads, "kv_heads": c.kvHeads, "head_dimension": c.headDimension,
                "context_length": c.contextLength, "vocabulary": c.vocabularySize, "rope_base": c.ropeBase,
                "rms_epsilon": c.rmsNormEpsilon, "sliding_window": c.slidingWindow.map { $0 as Any } ?? NSNull(),
                "sliding_window_layers": c.slidingLayerCount,
                "rope_base_sliding": c.slidingRopeBase.map { $0 as Any } ?? NSNull(),
                "rope_style": c.ropeHalves ? "neox" : "norm", "rope_freq_scale": c.ropeFreqScale,
                "rope_frequency_factors": engine.weights.ropeFrequencyFactors != nil,
                "qkv_bias": engine.weights.layers.first?.queryBias != nil, "query_key_norm": c.queryKeyNorm,
                "post_norms": c.postNorms, "feed_forward_activation": c.feedForwardActivation.rawValue,
                "embedding_scale": c.embeddingScale.map { $0 as Any } ?? NSNull(),
                "query_scale": c.queryScale.map { $0 as Any } ?? NSNull(),
                "final_logit_softcap": c.finalLogitSoftcap.map { $0 as Any } ?? NSNull(),
                "tied_output": engine.weights.tiedOutput,
            ] as [String: Any],
            "kv_bytes_per_token": c.kvBytesPerToken,
            "kv_bytes_per_token_q8_0": KVEntryType.q8_0.supports(headDimension: c.headDimension) ? c.kvBytesPerToken(.q8_0) as Any : NSNull(),
            "tensor_types": byType.mapValues { ["count": $0.count, "bytes": $0.bytes] },
            "tensor_count": file.tensors.count,
            "chat_template": engine.chatTemplate.map { "\($0.kind)" } ?? NSNull(),
            "metadata": metadata,
            "tensors": tensors ? file.tensors.map { ["name": $0.name, "type": $0.type.description, "dimensions": $0.dimensions, "bytes": $0.byteCount] as [String: Any] } : [],
        ]
        if json { try printJSON(object); return }
        var out = ""
        out += "model        \(engine.path)\n"
        out += "name         \((try? file.string("general.name")) ?? "?")\n"
        out += "architecture \(c.architecture)   GGUF v\(file.version)   \(file.bytes.count) bytes   \(parameters) parameters\n"
        out += "layers \(c.layerCount)   embedding \(c.embeddingDimension)   ffn \(c.feedForwardDimension)   heads \(c.queryHeads) q / \(c.kvHeads) kv x \(c.headDimension)\n"
        out += "context \(c.contextLength)   vocabulary \(c.vocabularySize)   rope base \(c.ropeBase)   rms eps \(c.rmsNormEpsilon)\n"
        if let w = c.slidingWindow {
            out += "sliding window \(w) on \(c.slidingLayerCount) of \(c.layerCount) layers" + (c.slidingRopeBase.map { " (rope base \($0))" } ?? "") + "\n"
        }
        var features: [String] = [c.ropeHalves ? "rope neox" : "rope norm", "\(c.feedForwardActivation.rawValue) feed-forward"]
        if engine.weights.ropeFrequencyFactors != nil { features.append("rope frequency factors") }
        if engine.weights.layers.first?.queryBias != nil { features.append("qkv bias") }
        if c.queryKeyNorm { features.append("q/k norm") }
        if c.postNorms { features.append("post norms") }
        if let s = c.embeddingScale { features.append("embedding x\(s)") }
        if let s = c.queryScale { features.append("query x\(s)") }
        if let s = c.finalLogitSoftcap { features.append("logit softcap \(s)") }
        if engine.weights.tiedOutput { features.append("tied output") }
        out += "features     \(features.joined(separator: ", "))\n"
        let q8 = KVEntryType.q8_0.supports(headDimension: c.headDimension) ? ", \(c.kvBytesPerToken(.q8_0)) with --kv-type q8_0" : ""
        out += "KV cache     \(c.kvBytesPerToken) bytes per token (f16 keys and values)\(q8)\n"
        out += "chat         \(engine.chatTemplate.map { "\($0.kind)" } ?? "none (raw prompts)")\n"
        out += "tensors      \(file.tensors.count): " + byType.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value.count) (\($0.value.bytes) B)" }.joined(separator: ", ") + "\n"
        out += "metadata:\n"
        // Keys, values and names from the file are escaped: a corrupted one may hold NUL bytes
        // or terminal escapes.
        for key in file.metadataKeys { out += "  \(GGUFError.escaped(key)) = \(GGUFError.escaped("\(Self.summary(file.metadata[key]!))"))\n" }
        if tensors {
            out += "tensors:\n"
            for t in file.tensors { out += "  \(GGUFError.escaped(t.name)) \(t.type) \(t.dimensions) \(t.byteCount) B\n" }
        }
        Terminal.writeOut(out)
    }

    /// Scalars as themselves; long arrays summarised (vocabularies have 10^5 entries).
    static func summary(_ v: GGUFValue) -> Any {
        switch v {
        case .string(let s): return s.count > 200 ? String(s.prefix(200)) + "…" : s
        case .bool(let b): return b
        case .float32, .float64: return v.doubleValue ?? 0
        case .array(let a):
            if a.count <= 8 { return a.map { summary($0) } }
            return "[\(a.count) x \(a.first?.typeName ?? "?")]"
        default: return v.intValue ?? 0
        }
    }
}
