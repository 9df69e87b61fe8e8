// IndexMem — model tests. Apache-2.0.
//
// Continuous batching must not change what any sequence computes: SmolLM2's products have
// the same arithmetic whatever their row count, so a sequence in a batch gets the logits it
// gets alone, bit for bit, whatever the others do (policies, modes, lengths, joining, leaving).

import Foundation
import IndexMem
import IndexMemKernels
import IndexMemTestSupport
import Testing

@Suite("Batch stepping on SmolLM2", .serialized)
struct BatchSteppingTests {
    static let greedy = GenerationOptions(maxTokens: 10, sampling: .greedy, stopAtEndOfTurn: false)

    /// A sequence the tests run alone and in batches: its cache, prompt and what it got alone.
    struct Sequence {
        var cache: CacheConfiguration
        var prompt: [Int]
    }

    /// Mixed policies, modes, memory and prompt lengths (some shorter than one chunk).
    static func mixed() throws -> [Sequence] {
        let text = try SharedEngine.licenseTokens(1200)
        func prompt(_ start: Int, _ n: Int) -> [Int] { Array(text[start..<(start + n)]) }
        return [
            Sequence(cache: CacheConfiguration(), prompt: prompt(0, 37)),
            Sequence(cache: CacheConfiguration(policy: "h2o", budget: 96, window: 32, chunk: 64), prompt: prompt(100, 300)),
            Sequence(cache: CacheConfiguration(policy: "snapkv", budget: 80, mode: .prefillThenCompress, window: 16, chunk: 64),
                     prompt: prompt(400, 200)),
            Sequence(cache: CacheConfiguration(policy: "window", budget: 64, window: 32, chunk: 32), prompt: prompt(700, 9)),
            Sequence(cache: CacheConfiguration(policy: "tova", budget: 72, window: 16, chunk: 64, memory: .on), prompt: prompt(800, 150)),
            Sequence(cache: CacheConfiguration(policy: "indexmem", budget: 96, window: 32, chunk: 64), prompt: prompt(960, 230)),
        ]
    }

    /// `mixed()` run alone, once for every test.
    static let references: Result<[(tokens: [Int], logits: [Float])], any Error> = Result {
        let engine = try SharedEngine.get()
        return try mixed().map { try alone(engine, $0) }
    }

    /// Greedy tokens and final logits of a sequence run alone with `Session.generate`.
    static func alone(_ engine: Engine, _ s: Sequence, options: GenerationOptions = greedy) throws -> (tokens: [Int], logits: [Float]) {
        let session = try engine.makeSession(cache: s.cache)
        let result = try session.generate(prompt: s.prompt, options: options)
        return (result.generatedTokens, session.lastLogits)
    }

    /// Runs sequences through one stepper: sequence i joins at step `joins[i]`, reads its prompt
    /// a chunk per step, then decodes; `leaves[i]` (if set) cancels it after that many steps.
    static func batched(_ engine: Engine, _ sequences: [Sequence], joins: [Int], leaves: [Int?] = [],
                        options: GenerationOptions = greedy) throws -> [(tokens: [Int], logits: [Float], finished: Bool)] {
        let stepper = BatchStepper(engine: engine, maxTokens: 512)
        let sessions = try sequences.map { try engine.makeSession(cache: $0.cache) }
        var fed = Array(repeating: 0, count: sequences.count)
        var decodings = [Decoding?](repeating: nil, count: sequences.count)
        var tokens = Array(repeating: [Int](), count: sequences.count)
        var finished = Array(repeating: false, count: sequences.count)
        var step = 0
        while finished.contains(false) {
            var members: [Int] = []
            var items: [BatchStepper.Item] = []
            for i in sequences.indices where !finished[i] && joins[i] <= step {
                if let leave = leaves.count > i ? leaves[i] : nil, step - joins[i] >= leave { finished[i] = true; continue }
                let prompt = sequences[i].prompt
                if fed[i] < prompt.count {
                    let n = min(sessions[i].cachePlan.chunk, prompt.count - fed[i])
                    items.append(.init(session: sessions[i], work: .prefill(prompt[fed[i]..<(fed[i] + n)])))
                } else {
                    items.append(.init(session: sessions[i], work: .decode(decodings[i]!)))
                }
                members.append(i)
            }
            try stepper.step(&items)
            for (i, item) in zip(members, items) {
                #expect(item.error == nil)
                switch item.work {
                case .prefill(let chunk):
                    fed[i] += chunk.count
                    if fed[i] == sequences[i].prompt.count {
                        sessions[i].finishPrompt()
                        decodings[i] = sessions[i].startDecoding(options)
                    }
                case .decode(let d):
                    decodings[i] = d
                    if let t = item.token { tokens[i].append(t) }
                    if d.isFinished { finished[i] = true }
                }
            }
            step += 1
        }
        return sequences.indices.map { (tokens[$0], sessions[$0].lastLogits, decodings[$0]?.isFinished ?? false) }
    }

    @Test("a batch of one: the tokens and logits of the session alone, bit for bit")
    func batchOfOne() throws {
        let engine = try SharedEngine.get()
        for (s, reference) in zip(try Self.mixed(), try Self.references.get()).prefix(3) {
            let run = try Self.batched(engine, [s], joins: [0])[0]
            #expect(run.tokens == reference.tokens)
            #expect(run.logits == reference.logits)
        }
    }

    @Test("mixed policies, modes and lengths in one batch: each sequence's tokens and logits as alone")
    func mixedBatch() throws {
        let engine = try SharedEngine.get()
        let sequences = try Self.mixed()
        let references = try Self.references.get()
        let runs = try Self.batched(engine, sequences, joins: [0, 0, 1, 3, 0, 5])
        for (i, (run, reference)) in zip(runs, references).enumerated() {
            #expect(run.tokens == reference.tokens, "sequence \(i)")
            #expect(run.logits == reference.logits, "sequence \(i)")
        }
    }

    @Test("random joins and cancellations leave the others' tokens unchanged", arguments: [1, 2, 3])
    func joinLeaveFuzz(seed: UInt64) throws {
        let engine = try SharedEngine.get()
        let sequences = try Self.mixed()
        let references = try Self.references.get()
        var rng = SplitMix64(seed: seed)
        let joins = sequences.map { _ in Int(rng.next() % 8) }
        // About a third leave early (cancelled), at any step of their prefill or decoding.
        let leaves: [Int?] = sequences.map { _ in rng.next() % 3 == 0 ? Int(rng.next() % 12) : nil }
        let runs = try Self.batched(engine, sequences, joins: joins, leaves: leaves)
        for (i, run) in runs.enumerated() where leaves[i] == nil {
            #expect(run.tokens == references[i].tokens, "sequence \(i), joins \(joins), leaves \(leaves)")
        }
    }

    @Test("an item that cannot run gets its error; the others run; a bad batch runs nothing")
    func errors() throws {
        let engine = try SharedEngine.get()
        let stepper = BatchStepper(engine: engine, maxTokens: 64)
        let plan = try CacheConfiguration(chunk: 32).resolve()
        let good = try engine.makeSession(cache: plan), tooLong = try engine.makeSession(cache: plan)
        let unknown = try engine.makeSession(cache: plan)
        let text = try SharedEngine.licenseTokens(40)
        var items: [BatchStepper.Item] = [
            .init(session: good, work: .prefill(text[0..<20])),
            .init(session: tooLong, work: .prefill(text[0..<40])),  // longer than its chunk
            .init(session: unknown, work: .prefill([1, engine.configuration.vocabularySize])),
        ]
        try stepper.step(&items)
        #expect(items[0].error == nil && good.tokens == Array(text[0..<20]))
        #expect(items[1].error != nil && tooLong.tokens.isEmpty)
        #expect(items[2].error != nil && unknown.tokens.isEmpty)

        var twice: [BatchStepper.Item] = [.init(session: good, work: .prefill(text[20..<21])), .init(session: good, work: .prefill(text[21..<22]))]
        #expect(throws: EngineError.self) { try stepper.step(&twice) }
        let wide = BatchStepper(engine: engine, maxTokens: 16)
        var over: [BatchStepper.Item] = [.init(session: tooLong, work: .prefill(text[0..<20]))]
        #expect(throws: EngineError.self) { try wide.step(&over) }
        #expect(good.tokens.count == 20 && tooLong.tokens.isEmpty)
    }
}
