// IndexMem — learning tests. Apache-2.0.
//
// The latent memory's fit: its loss's hand-written gradient against finite differences, the
// eigen-solver behind its key subspace, and `indexmem train memory` end to end on a tiny
// random-weight model (a killed run resumes to the same memory; the adapter switches the
// memory on for any evicting policy, with clear errors where it cannot).

import Foundation
import IndexMem
import IndexMemKernels
import IndexMemLearn
import IndexMemSafetensors
import IndexMemTestSupport
import Testing

@Suite("Latent memory fit")
struct MemoryFitTests {
    static func samples(_ count: Int, seed: UInt64) -> [MemorySample] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            // Inner products of real vectors: u.u, w.w and r.r positive, Cauchy-Schwarz respected.
            let uu = rng.float(0.1, 2), ww = rng.float(0.1, 2), rr = rng.float(0.1, 2)
            return MemorySample(x1: rng.float(-3, 3), x2: rng.float(0, 2), ru: rng.float(-0.3, 0.3) * (uu * rr).squareRoot(),
                                rw: rng.float(-0.3, 0.3) * (ww * rr).squareRoot(), uu: uu, uw: rng.float(-0.3, 0.3) * (uu * ww).squareRoot(),
                                ww: ww, rr: rr)
        }
    }

    @Test("the gate's loss gradient matches finite differences")
    func gradient() {
        let data = Self.samples(50, seed: 5)
        for p in [MemoryGateLoss.closedForm, [0.4, -0.7, 1.3, 0.6], [-1.2, 0.3, -0.2, 1.8]] {
            let (_, g) = MemoryGateLoss.lossAndGradient(p, data)
            for i in 0..<MemoryGateLoss.parameterCount {
                let h = 1e-5
                var plus = p, minus = p
                plus[i] += h; minus[i] -= h
                let numeric = (MemoryGateLoss.lossAndGradient(plus, data).loss - MemoryGateLoss.lossAndGradient(minus, data).loss) / (2 * h)
                #expect(abs(numeric - g[i]) < 1e-5 * max(1, abs(numeric)), "parameter \(i): \(numeric) vs \(g[i])")
            }
        }
    }

    @Test("the loss of g = 0 is the eviction's error, and the fit never ends above where it starts")
    func fitImproves() {
        let data = Self.samples(400, seed: 9)
        let shut = MemoryGateLoss.lossAndGradient([-200, 0, 0, 1], data).loss
        #expect(abs(shut - MemoryGateLoss.baseline(data)) < 1e-9)
        let fitted = MemoryGateLoss.fit(data)
        #expect(MemoryGateLoss.lossAndGradient(fitted, data).loss <= MemoryGateLoss.lossAndGradient(MemoryGateLoss.closedForm, data).loss)
    }

    @Test("eigenvectors of a symmetric matrix: orthonormal, descending, and they rebuild it")
    func eigen() {
        var rng = SplitMix64(seed: 4)
        let n = 12
        let b = (0..<(n * n)).map { _ in Double(rng.float(-1, 1)) }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += b[i * n + k] * b[j * n + k] } } }
        let (values, vectors) = SymmetricEigen.decompose(a, n: n)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 >= $1 })
        for i in 0..<n {
            for j in 0..<n {
                let dot = (0..<n).reduce(0.0) { $0 + vectors[i][$1] * vectors[j][$1] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-9)
                let rebuilt = (0..<n).reduce(0.0) { $0 + values[$1] * vectors[$1][i] * vectors[$1][j] }
                #expect(abs(rebuilt - a[i * n + j]) < 1e-8)
            }
        }
    }
}

@Suite("Memory trainer on a tiny model", .serialized)
struct MemoryTrainerTests {
    static func options() -> MemoryTrainingOptions {
        var o = MemoryTrainingOptions()
        o.sequences = 4
        o.length = 128
        o.block = 32
        o.window = 8
        o.rank = 4
        o.budgets = [24, 40]
        o.policies = ["window", "tova", "indexmem"]
        o.projectionSequences = 1
        o.stride = 2
        o.validationEvery = 2
        return o
    }

    /// The tiny model's indexer adapter (trained once), to which the memory is added.
    static func indexerAdapter(_ engine: Engine) throws -> String {
        let out = TinyTraining.directory + "/memory-base.safetensors"
        if !FileManager.default.fileExists(atPath: out) {
            try? FileManager.default.removeItem(atPath: out + ".checkpoint")
            _ = try TinyTraining.train(engine, try TinyTraining.corpus(), out: out)
        }
        return out
    }

    static func train(_ engine: Engine, adapter: String, out: String, stopAfter: Int? = nil) throws -> Bool {
        let trainer = MemoryTrainer(engine: engine, corpus: try TinyTraining.corpus(), options: options(), adapter: adapter)
        trainer.log = { _ in }
        trainer.stopAfter = stopAfter
        return try trainer.train(out: out, command: "test")
    }

    static func memoryTensors(_ path: String) throws -> [String: SafetensorsTensor] {
        try Safetensors(path: path).tensors.filter { $0.key.hasPrefix("memory.") }
    }

    @Test("a killed run resumes and ends with the same memory; the adapter keeps its indexer")
    func resume() throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let base = try Self.indexerAdapter(engine)
        let dir = TinyTraining.directory
        let whole = dir + "/memory-whole.safetensors", resumed = dir + "/memory-resumed.safetensors"
        for p in [whole, resumed] { try? FileManager.default.removeItem(atPath: p + ".memory-checkpoint"); try? FileManager.default.removeItem(atPath: p) }
        #expect(try Self.train(engine, adapter: base, out: whole))
        #expect(try Self.train(engine, adapter: base, out: resumed, stopAfter: 1) == false)
        #expect(!FileManager.default.fileExists(atPath: resumed))
        #expect(try Self.train(engine, adapter: base, out: resumed))
        let a = try Self.memoryTensors(whole), b = try Self.memoryTensors(resumed)
        #expect(a.count == 3 * engine.configuration.globalLayers.count)
        #expect(a == b, "a resumed run must end with the same memory")
        let original = try Safetensors(path: base).tensors
        #expect(try Safetensors(path: whole).tensors.filter { !$0.key.hasPrefix("memory.") } == original)
        let shared = try engine.indexer(adapter: whole)
        #expect(shared.memory.count == engine.configuration.globalLayers.count)
        // The key subspace's rows are orthonormal.
        let m = shared.memory[0], d = m.headDimension
        for i in 0..<m.rank {
            for j in 0..<m.rank {
                let dot = (0..<d).reduce(Float(0)) { $0 + m.projection[i * d + $1] * m.projection[j * d + $1] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-4)
            }
        }
    }

    @Test("--memory switches the adapter's memory on for any evicting policy; its bytes are fixed; an unreached budget changes nothing")
    func switchedOn() throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let out = TinyTraining.directory + "/memory-on.safetensors"
        if !FileManager.default.fileExists(atPath: out) {
            try? FileManager.default.removeItem(atPath: out + ".memory-checkpoint")
            _ = try Self.train(engine, adapter: try Self.indexerAdapter(engine), out: out)
        }
        let words = "the quiet river and the old stone bridge over the harbour at morning with a small bright candle"
        let prompt = Array(engine.tokenize(Array(repeating: words, count: 8).joined(separator: " ")).prefix(120))
        for policy in ["window", "snapkv", "indexmem"] {
            func logits(_ memory: MemoryMode, budget: Int = 32) throws -> (logits: [Float], report: CacheReport) {
                let s = try engine.makeSession(cache: CacheConfiguration(policy: policy, budget: budget, window: 8, chunk: 16, adapter: out, memory: memory))
                try s.feed(prompt)
                return (s.lastLogits, s.cacheReport())
            }
            let off = try logits(.off), on = try logits(.on), softmax = try logits(.softmax)
            #expect(off.report.memoryBytes == 0)
            #expect(on.logits != off.logits && softmax.logits != off.logits && on.logits != softmax.logits, "\(policy)")
            let state = try engine.indexer(adapter: out).memory.reduce(0) { $0 + $1.stateBytes }
            #expect(on.report.memoryBytes == state && softmax.report.memoryBytes == state)
            #expect(on.report.kvBytes == off.report.kvBytes)
            let unreached = try logits(.on, budget: 512), full = try engine.makeSession(cache: CacheConfiguration(chunk: 16))
            try full.feed(prompt)
            #expect(unreached.logits == full.lastLogits, "nothing evicted: plain attention")
        }
    }

    @Test("clear errors: an adapter without memory, the full cache with a memory, an unknown mode, a broken memory tensor")
    func errors() throws {
        let engine = try Engine(path: try TinyTraining.model("qwen2"), threads: 2)
        let base = try Self.indexerAdapter(engine)
        do {
            _ = try engine.makeSession(cache: CacheConfiguration(policy: "window", budget: 32, window: 8, adapter: base, memory: .on))
            Issue.record("an adapter without memory was accepted")
        } catch {
            #expect("\(error)".contains("indexmem train memory"), "\(error)")
        }
        #expect(throws: CacheConfigurationError.memoryWithoutEviction) { _ = try CacheConfiguration(memory: .on).resolve() }
        #expect(throws: CacheConfigurationError.unknownMemory("maybe")) { _ = try MemoryMode(parsing: "maybe") }
        let trained = TinyTraining.directory + "/memory-on.safetensors"
        if !FileManager.default.fileExists(atPath: trained) {
            _ = try Self.train(engine, adapter: base, out: trained)
        }
        var file = try Safetensors(path: trained)
        var gate = file.tensors["memory.0.gate"]!
        gate.values[0] = .nan
        file.tensors["memory.0.gate"] = gate
        let broken = TinyTraining.directory + "/memory-broken.safetensors"
        try file.write(to: broken)
        #expect(throws: AdapterError.self) { _ = try IndexerAdapterFile.read(path: broken) }
        file = try Safetensors(path: trained)
        file.tensors["memory.1.projection"] = nil
        try file.write(to: broken)
        #expect(throws: AdapterError.self) { _ = try IndexerAdapterFile.read(path: broken) }
    }
}
