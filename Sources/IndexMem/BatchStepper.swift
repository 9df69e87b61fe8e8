// IndexMem — public facade. Apache-2.0.
//
// Continuous batching: one forward pass advances many sessions, each by one prompt chunk or
// one decoding step. Decoding reads every weight once per token (about 100 MB for SmolLM2), so
// reading them once for N sequences is what makes a server's total throughput grow with its
// load (llama.cpp's server `--parallel`, vLLM). Each session keeps its own caches, policy,
// budget and positions; its prompt chunk is one block of its plan's `chunk`, so a bounded
// cache evicts at the same points as when the session runs alone, and the sampled tokens are
// those it would sample alone (bit for bit whenever the weight products' arithmetic does not
// depend on the row count: every 32-value format, SmolLM2's included).

import Foundation
import IndexMemModel

// MARK: - Batch stepping

/// Steps several sessions of one engine in one forward pass. Not thread-safe: one caller
/// (a scheduler thread, an evaluation loop) owns it.
public final class BatchStepper {
    public let engine: Engine
    /// Most token rows in one step (decoding sessions take one each, a prompt chunk its length).
    public let maxTokens: Int
    private let transformer: Transformer

    /// - Parameter maxTokens: rows of the scratch buffers (at least 1).
    public init(engine: Engine, maxTokens: Int) {
        self.engine = engine
        self.maxTokens = max(1, maxTokens)
        transformer = Transformer(weights: engine.weights, maxChunk: self.maxTokens, pool: engine.pool)
    }

    /// One session's part of a step.
    public struct Item {
        public enum Work {
            /// Feeds the next chunk of the prompt (at most the session plan's `chunk` tokens).
            case prefill(ArraySlice<Int>)
            /// One `Session.decodeStep`: feeds the token sampled last (if any), samples the next.
            case decode(Decoding)
        }
        public let session: Session
        public var work: Work
        /// After the step, for `.decode`: the new token, or nil once the generation has ended
        /// (as `Session.decodeStep` returns).
        public internal(set) var token: Int?
        /// After the step: why this item did not run (its session is unchanged); other items ran.
        public internal(set) var error: (any Error)?

        public init(session: Session, work: Work) {
            self.session = session
            self.work = work
        }

        /// The decoding state after the step (for `.decode` items).
        public var decoding: Decoding? {
            if case .decode(let d) = work { return d }
            return nil
        }

        /// Token rows this item adds to a step.
        public var rows: Int {
            switch work {
            case .prefill(let ids): return ids.count
            case .decode(let d): return d.unfed == nil ? 0 : 1
            }
        }
    }

    /// Runs one step for every item: their rows in one forward pass, then each decoding
    /// item samples its next token. An item that cannot run (context full, a chunk longer than
    /// its plan's, an unknown token) gets its `error` and leaves its session as it was.
    /// - Throws: `EngineError.invalidOption` when the items' rows exceed `maxTokens` or one
    ///   session appears twice; nothing has run then.
    public func step(_ items: inout [Item]) throws {
        let rows = items.reduce(0) { $0 + $1.rows }
        guard rows <= maxTokens else {
            throw EngineError.invalidOption("a batch step of \(rows) token rows exceeds its \(maxTokens) (max batch tokens)")
        }
        var seen = Set<ObjectIdentifier>()
        for item in items where !seen.insert(ObjectIdentifier(item.session)).inserted {
            throw EngineError.invalidOption("a session appears twice in one batch step")
        }
        var blocks: [SequenceBlock] = []
        var fed: [(item: Int, ids: ArraySlice<Int>)] = []
        for i in items.indices {
            items[i].token = nil
            items[i].error = nil
            let ids: ArraySlice<Int>
            switch items[i].work {
            case .prefill(let chunk):
                guard chunk.count <= items[i].session.cachePlan.chunk else {
                    items[i].error = EngineError.invalidOption(
                        "a prompt chunk of \(chunk.count) tokens exceeds the session's chunk of \(items[i].session.cachePlan.chunk)")
                    continue
                }
                ids = chunk
            case .decode(let decoding):
                guard !decoding.isFinished, let previous = decoding.unfed else { continue }
                ids = [previous]
            }
            guard !ids.isEmpty else { continue }
            do {
                blocks.append(try items[i].session.batchBlock(ids))
                fed.append((i, ids))
            } catch {
                items[i].error = error
            }
        }
        if !blocks.isEmpty { try transformer.forward(batch: blocks) }
        for (i, ids) in fed { items[i].session.batchBlockDidRun(ids) }
        // Sample: every decoding item whose feed ran, or that had nothing to feed.
        for i in items.indices where items[i].error == nil {
            guard case .decode(var decoding) = items[i].work, !decoding.isFinished else { continue }
            items[i].work = .prefill([])  // one reference left: the sampler's buffers change in place
            if decoding.unfed != nil {
                decoding.unfed = nil
                decoding.steps += 1
            }
            items[i].token = items[i].session.sampleNext(&decoding)
            items[i].work = .decode(decoding)
        }
    }
}

// MARK: - Batched generation

extension BatchStepper {
    /// `Session.generate` for several sessions at once: each reads its prompt (a chunk per
    /// step, several prompts' chunks per step while they fit in `maxTokens`), then all decode
    /// together, one token each per step. Each result is the one `generate` gives alone
    /// (bit for bit where the products allow it, see `Transformer.forward(batch:)`).
    /// - Throws: the first error of any session (an empty prompt, the context full).
    public func generate(_ sessions: [Session], prompts: [[Int]], options: [GenerationOptions]) throws -> [GenerationResult] {
        precondition(sessions.count == prompts.count && prompts.count == options.count, "one prompt and options per session")
        for (session, prompt) in zip(sessions, prompts) where prompt.isEmpty && session.tokens.isEmpty { throw EngineError.emptyPrompt }
        for o in options where o.maxTokens < 0 { throw EngineError.invalidOption("maxTokens must not be negative") }
        let count = sessions.count
        var fed = [Int](repeating: 0, count: count)
        var decodings = [Decoding?](repeating: nil, count: count)
        var texts = [String](repeating: "", count: count)
        var accumulators = (0..<count).map { _ in TextAccumulator(tokenizer: engine.tokenizer) }
        var timings = [GenerationTimings](repeating: GenerationTimings(), count: count)
        var started = [UInt64](repeating: DispatchTime.now().uptimeNanoseconds, count: count)
        func startDecoding(_ i: Int) {
            sessions[i].finishPrompt()
            let now = DispatchTime.now().uptimeNanoseconds
            timings[i].prefillSeconds = Double(now - started[i]) / 1e9
            timings[i].prefillTokens = prompts[i].count
            started[i] = now
            decodings[i] = sessions[i].startDecoding(options[i])
        }
        for i in 0..<count where prompts[i].isEmpty { startDecoding(i) }
        while decodings.contains(where: { $0 == nil || !$0!.isFinished }) {
            var members: [Int] = []
            var items: [Item] = []
            var rows = 0
            for i in 0..<count {
                if let d = decodings[i] {
                    guard !d.isFinished else { continue }
                    decodings[i] = nil  // the item holds the only copy
                    items.append(Item(session: sessions[i], work: .decode(d)))
                    rows += d.unfed == nil ? 0 : 1
                    members.append(i)
                }
            }
            for i in 0..<count where decodings[i] == nil && !members.contains(i) {
                let n = min(sessions[i].cachePlan.chunk, prompts[i].count - fed[i])
                if !items.isEmpty && rows + n > maxTokens { continue }
                guard rows + n <= maxTokens else {
                    // A chunk larger than this stepper: the session reads it alone.
                    try sessions[i].prefill(Array(prompts[i][fed[i]..<(fed[i] + n)]))
                    fed[i] += n
                    if fed[i] == prompts[i].count { startDecoding(i) }
                    continue
                }
                items.append(Item(session: sessions[i], work: .prefill(prompts[i][fed[i]..<(fed[i] + n)])))
                rows += n
                members.append(i)
            }
            try step(&items)
            for (i, item) in zip(members, items) {
                if let error = item.error { throw error }
                switch item.work {
                case .prefill(let chunk):
                    fed[i] += chunk.count
                    if fed[i] == prompts[i].count { startDecoding(i) }
                case .decode(let d):
                    decodings[i] = d
                    if let token = item.token { texts[i] += accumulators[i].append(token) }
                    if d.isFinished {
                        timings[i].decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - started[i]) / 1e9
                        timings[i].decodeTokens = d.steps
                    }
                }
            }
        }
        return (0..<count).map { i in
            GenerationResult(promptTokens: prompts[i], generatedTokens: decodings[i]!.generated, text: texts[i] + accumulators[i].flush(),
                             finishReason: decodings[i]!.finishReason ?? .length, timings: timings[i], cache: sessions[i].cacheReport())
        }
    }
}
