// IndexMem — evaluation. Apache-2.0.

import Foundation
import IndexMem

// MARK: - Running work items

/// Runs work items on one engine, caching the sample being evaluated (its prompt is built
/// once and reused under every cache setting).
public final class EvalRunner {
    public let engine: Engine
    public let prompts: PromptBuilder
    public let spec: SweepSpec
    public let datasetSamples: [EvalSample]?
    private var haystacks: [HaystackKind: Haystack] = [:]
    private var cachedKey = ""
    private var cachedPrompt: PreparedPrompt?
    private var cachedTokens: [Int] = []
    /// Write each prompt's token ids into its result line.
    public var recordPrompts = false

    public init(engine: Engine, spec: SweepSpec, datasetSamples: [EvalSample]? = nil, raw: Bool = false) {
        self.engine = engine
        self.spec = spec
        self.datasetSamples = datasetSamples
        prompts = PromptBuilder(engine: engine, raw: raw)
    }

    func haystack(_ kind: HaystackKind) throws -> Haystack {
        if let h = haystacks[kind] { return h }
        let h = try Haystack.load(kind)
        haystacks[kind] = h
        return h
    }

    /// The prompt of a work item's sample (built once per sample).
    public func prompt(for item: WorkItem) throws -> PreparedPrompt {
        let key = "\(item.task)|\(item.length)|\(item.sample)|\(String(describing: item.depth))"
        if key == cachedKey, let p = cachedPrompt { return p }
        let prepared: PreparedPrompt
        if let datasetSamples {
            prepared = prompts.prepare(datasetSamples[item.sample])
        } else {
            let task = try TaskRegistry.task(named: item.task)
            prepared = try SampleBuilder.build(task: task, length: item.length, index: item.sample, seed: spec.seed, depth: item.depth,
                                               haystack: try haystack(task.haystack), prompts: prompts)
        }
        cachedKey = key
        cachedPrompt = prepared
        return prepared
    }

    /// What items must share to run from one prefill: all but the budget, in
    /// prefill-then-compress mode (nil for items that run alone).
    public static func sharedPrefillKey(_ item: WorkItem) -> String? {
        guard item.cache.mode == .prefillThenCompress, item.task != PerplexityTask.name, !item.cache.isFull else { return nil }
        let c = item.cache
        return "\(item.sampleID)|\(c.policySpec)|\(c.sinks)|\(c.window)|\(c.chunk)|\(c.memory.rawValue)|\(c.adapter ?? "")|\(c.kvType.rawValue)"
    }

    /// Runs prefill-then-compress items that differ only in budget from one prefill: the
    /// context is read once with the full cache, then compressed to each budget, largest
    /// first (the selection is nested, so this equals compressing each from scratch); the
    /// question and answer of each budget are rolled back before the next.
    public func run(group items: [WorkItem], onResult: (EvalResult) throws -> Void) throws {
        guard items.count > 1, let first = items.first, Self.sharedPrefillKey(first) != nil else {
            for item in items { try onResult(try run(item)) }
            return
        }
        let start = Date()
        let prompt = try prompt(for: first)
        try checkFits(prompt)
        let budgets = items.map { $0.cache.resolvedBudget(contextTokens: prompt.contextTokens.count)! }
        let session = try engine.makeSession(cache: try first.cache.withBudget(budgets.max()!))
        try session.prefill(prompt.contextTokens)
        let shared = Date().timeIntervalSince(start) / Double(items.count)
        for (item, budget) in zip(items, budgets).sorted(by: { $0.1 > $1.1 }) {
            let t0 = Date()
            try session.compress(budget: budget)
            let mark = session.checkpoint()
            let generation = try answer(prompt, in: session)
            try onResult(answerResult(item, prompt: prompt, generation: generation, report: session.cacheReport(), budget: budget,
                                      seconds: shared + Date().timeIntervalSince(t0)))
            session.rollback(to: mark)
        }
    }

    /// Whether `run(batch:)` can take the item (a question to answer, not a shared prefill).
    public static func batchable(_ item: WorkItem) -> Bool {
        item.task != PerplexityTask.name && sharedPrefillKey(item) == nil
    }

    /// Runs answer items together: each sample's context is read alone as `run(_:)` reads
    /// it, then their questions and answers go through `stepper` in shared forward passes.
    /// Each result equals `run(_:)`'s (bit for bit on SmolLM2); its seconds are its own
    /// prefill plus an equal share of the batch's answering time.
    public func run(batch items: [WorkItem], stepper: BatchStepper, onResult: (EvalResult) throws -> Void) throws {
        guard items.count > 1 else {
            for item in items { try onResult(try run(item)) }
            return
        }
        precondition(items.allSatisfy(Self.batchable), "batched items answer a question each")
        var prompts: [PreparedPrompt] = [], sessions: [Session] = [], prefillSeconds: [Double] = []
        for item in items {
            let start = Date()
            let prompt = try prompt(for: item)
            try checkFits(prompt)
            let session = try engine.makeSession(cache: item.cache)
            try session.prefill(prompt.contextTokens)
            session.finishPrompt()
            prompts.append(prompt)
            sessions.append(session)
            prefillSeconds.append(Date().timeIntervalSince(start))
        }
        let start = Date()
        let generations = try stepper.generate(sessions, prompts: prompts.map(\.questionTokens), options: prompts.map(answerOptions))
        let shared = Date().timeIntervalSince(start) / Double(items.count)
        for (i, item) in items.enumerated() {
            let report = sessions[i].cacheReport()
            try onResult(answerResult(item, prompt: prompts[i], generation: generations[i], report: report, budget: report.budget,
                                      seconds: prefillSeconds[i] + shared))
        }
    }

    /// Runs one work item.
    public func run(_ item: WorkItem) throws -> EvalResult {
        let start = Date()
        if item.task == PerplexityTask.name { return try runPerplexity(item, start: start) }
        let prompt = try prompt(for: item)
        try checkFits(prompt)
        let session = try engine.makeSession(cache: item.cache)
        // The context is the prompt a prefill-then-compress cache compresses; the question follows.
        try session.prefill(prompt.contextTokens)
        session.finishPrompt()
        let generation = try answer(prompt, in: session)
        let report = session.cacheReport()
        return answerResult(item, prompt: prompt, generation: generation, report: report, budget: report.budget,
                            seconds: Date().timeIntervalSince(start))
    }

    /// Refuses a sample whose longest answer would run past the context, before any work.
    private func checkFits(_ prompt: PreparedPrompt) throws {
        try engine.checkContext(tokens: prompt.totalTokens + prompt.sample.maxNewTokens)
    }

    /// Greedy answer to the question, after the context the session holds.
    private func answer(_ prompt: PreparedPrompt, in session: Session) throws -> GenerationResult {
        try session.generate(prompt: prompt.questionTokens, options: answerOptions(prompt))
    }

    private func answerOptions(_ prompt: PreparedPrompt) -> GenerationOptions {
        GenerationOptions(maxTokens: prompt.sample.maxNewTokens, sampling: .greedy, stopAtEndOfTurn: true)
    }

    /// The result line of a question answered under `item`'s cache setting.
    private func answerResult(_ item: WorkItem, prompt: PreparedPrompt, generation: GenerationResult, report: CacheReport,
                              budget: Int?, seconds: Double) -> EvalResult {
        let sample = prompt.sample
        var result = resultLine(item, id: sample.id, task: sample.task, length: prompt.totalTokens, depth: sample.depth,
                                report: report, budget: budget, seconds: seconds,
                                score: Scoring.stringMatchAll(output: generation.text, answers: sample.answers),
                                output: generation.text, answers: sample.answers, generatedTokens: generation.generatedTokens.count,
                                dataset: spec.dataset)
        result.outputTokenIds = generation.generatedTokens
        if recordPrompts {
            result.contextTokenIds = prompt.contextTokens
            result.questionTokenIds = prompt.questionTokens
        }
        return result
    }

    private func runPerplexity(_ item: WorkItem, start: Date) throws -> EvalResult {
        let key = "ppl|\(item.length)|\(item.sample)"
        if key != cachedKey {
            let seed = spec.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(item.sample)
            cachedTokens = PerplexityTask.tokens(length: item.length, seed: seed, haystack: try haystack(.prose), engine: engine)
            cachedKey = key
            cachedPrompt = nil
        }
        let session = try engine.makeSession(cache: item.cache)
        session.prepare(contextTokens: cachedTokens.count)
        let nll = try PerplexityTask.meanNLL(tokens: cachedTokens, session: session, chunk: item.cache.chunk)
        let report = session.cacheReport()
        return resultLine(item, id: "\(PerplexityTask.name)-\(item.length)-\(item.sample)-s\(spec.seed)", task: PerplexityTask.name,
                          length: cachedTokens.count, depth: nil, report: report, budget: report.budget,
                          seconds: Date().timeIntervalSince(start), score: exp(-nll), perplexity: exp(nll))
    }

    /// A result line: what every line takes from the work item, the sweep and the cache report,
    /// plus what the task measured.
    private func resultLine(_ item: WorkItem, id: String, task: String, length: Int, depth: Double?, report: CacheReport, budget: Int?,
                            seconds: Double, score: Double, output: String = "", answers: [String] = [], generatedTokens: Int = 0,
                            perplexity: Double? = nil, dataset: String? = nil) -> EvalResult {
        var result = EvalResult(id: id, task: task, length: length, policy: report.policy, budget: budget, ratio: item.cache.ratio,
                   mode: item.cache.mode.rawValue, score: score, output: output, answers: answers, kvBytesPeak: report.kvBytesPeak,
                   kvBytesFullCache: report.kvBytesFullCache, modelSha256: engine.sha256, seconds: seconds, depth: depth,
                   sample: item.sample, seed: spec.seed, sinks: item.cache.sinks, window: item.cache.window, chunk: item.cache.chunk,
                   evictions: report.evictions, generatedTokens: generatedTokens, perplexity: perplexity, dataset: dataset)
        result.memory = item.key.memory
        result.kvType = item.key.kvType
        return result
    }
}
