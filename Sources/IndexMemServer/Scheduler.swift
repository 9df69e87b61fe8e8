// IndexMem — server. Apache-2.0.
//
// One thread owns every session and steps them all together (continuous batching): each step
// is one forward pass holding every decoding request's next token and, up to the step's token
// budget, prompt chunks of the prefilling requests served least so far (at least one chunk, so
// prompts always progress). Requests join and leave between steps. The weights are read once
// per step for all of them, which is what lets total throughput grow with the number of
// clients; one stepping thread shares the cores without contention, keeps inter-token latency
// bounded while long prompts are read, and is the one place where KV memory is allocated and freed.
//
// Admission: a request reserves the most KV bytes its cache can hold
// (`CachePlan.kvBytesBound`) from the global pool before it gets a session; one
// that does not fit waits in a bounded FIFO queue (no overtaking, so a large request is not
// starved); a full queue refuses at once. A cancelled request (client gone) is dropped at
// the next step: its session is released and its reservation returned.

import Foundation
import IndexMem
import Synchronization

// MARK: - What a request asks the scheduler

/// One generation, fully validated and tokenized.
package struct GenerationRequest: Sendable {
    package var promptTokens: [Int]
    package var maxTokens: Int
    var sampling: SamplingOptions
    var stopStrings: [String]
    /// Generate past the end-of-turn token (llama.cpp's `ignore_eos`), up to `maxTokens`.
    var ignoreEndOfTurn: Bool = false
    /// The request's cache plan (resolved and bound by the parser).
    package var cache: CachePlan
    /// KV bytes reserved from the pool for this request.
    package var reservation: Int
}

/// What the scheduler reports to the request's handler.
enum JobEvent: Sendable {
    /// The request got its reservation and a place among the running ones (sent first, so a
    /// stream's 200 goes out only then and a queued request can still get a 503).
    case admitted
    /// Text to send (possibly empty when a token completed nothing visible).
    case text(String)
    case finished(JobSummary)
    case failed(APIError)
}

/// How a request ended.
struct JobSummary: Sendable {
    /// `stop` (end of turn or a stop string) or `length`.
    var finishReason: String
    var promptTokens: Int
    var completionTokens: Int
    var cache: CacheReport
    var queueSeconds: Double
    var prefillSeconds: Double
    var decodeSeconds: Double
}

// MARK: - Job

/// A request inside the scheduler. Fields below `cancelledFlag` belong to the scheduler thread.
final class GenerationJob: @unchecked Sendable {
    let request: GenerationRequest
    let events: AsyncStream<JobEvent>.Continuation
    let enqueued = DispatchTime.now().uptimeNanoseconds
    private let cancelledFlag = Atomic<Bool>(false)
    /// Cut by the shutdown, not by its client: its client is still there and is told why.
    private let cutByShutdownFlag = Atomic<Bool>(false)

    var session: Session?
    /// Set when the prompt is read.
    var decoding: Decoding?
    var text: TextStream
    var fed = 0
    var admitted: UInt64 = 0
    var prefillDone: UInt64 = 0
    var served: UInt64 = 0
    /// Completed, failed or cancelled: the round retires it.
    var done = false

    init(request: GenerationRequest, tokenizer: any Tokenizer, events: AsyncStream<JobEvent>.Continuation) {
        self.request = request
        self.events = events
        text = TextStream(tokenizer: tokenizer, stops: request.stopStrings)
    }

    var isCancelled: Bool { cancelledFlag.load(ordering: .acquiring) }
    func markCancelled() { cancelledFlag.store(true, ordering: .releasing) }
    var isCutByShutdown: Bool { cutByShutdownFlag.load(ordering: .acquiring) }
    func markCutByShutdown() {
        cutByShutdownFlag.store(true, ordering: .releasing)
        markCancelled()
    }
    var isPrefilling: Bool { fed < request.promptTokens.count }
    var completionTokens: Int { decoding?.generated.count ?? 0 }
    var generation: GenerationOptions {
        GenerationOptions(maxTokens: request.maxTokens, sampling: request.sampling, stopAtEndOfTurn: !request.ignoreEndOfTurn)
    }
}

// MARK: - Scheduler

/// Admission against the KV pool and fair stepping of the admitted sessions.
final class Scheduler: @unchecked Sendable {
    let engine: Engine
    let poolBytes: Int
    let maxQueue: Int
    let maxActive: Int
    /// Token rows per step: decoding requests' tokens plus prompt chunks (at least one chunk).
    let maxBatchTokens: Int
    let metrics: ServerMetrics
    /// The one forward pass of every step (made on the stepping thread's first step).
    private var stepper: BatchStepper?

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var waiting: [GenerationJob] = []
    private var active: [GenerationJob] = []
    private var reserved = 0
    private var accepting = true
    private var running = false
    private var stopped = false
    /// Average seconds a request holds its reservation (for `Retry-After`).
    private var averageJobSeconds = 5.0

    init(engine: Engine, poolBytes: Int, maxQueue: Int, maxActive: Int, maxBatchTokens: Int, metrics: ServerMetrics) {
        self.engine = engine
        self.poolBytes = poolBytes
        self.maxQueue = maxQueue
        self.maxActive = maxActive
        self.maxBatchTokens = maxBatchTokens
        self.metrics = metrics
        metrics.setPool(bytes: poolBytes)
    }

    /// Starts the stepping thread (once).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !running else { return }
        running = true
        let t = Thread { [self] in loop() }
        t.name = "indexmem-scheduler"
        t.stackSize = 4 << 20
        t.start()
    }

    /// Queues a request. Its events arrive on the returned stream; ending the stream (the
    /// client went away) cancels it.
    /// - Throws: `APIError` 503 when the queue is full or the server is shutting down, 400
    ///   when the request could never fit the pool.
    func submit(_ request: GenerationRequest) throws(APIError) -> (GenerationJob, AsyncStream<JobEvent>) {
        guard request.reservation <= poolBytes else {
            throw .invalidRequest(
                "this request needs \(request.reservation) bytes of KV cache but the server's whole pool is \(poolBytes) bytes; "
                    + "lower max_tokens, the prompt, or kv_budget", param: "kv_budget", code: "kv_pool_exceeded")
        }
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        let job = GenerationJob(request: request, tokenizer: engine.tokenizer, events: continuation)
        condition.lock()
        if !accepting {
            condition.unlock()
            throw .shuttingDown()
        }
        let fitsNow = waiting.isEmpty && active.count < maxActive && reserved + request.reservation <= poolBytes
        if !fitsNow && waiting.count >= maxQueue {
            let retry = retryAfterLocked()
            let queued = waiting.count
            let reason = waitReasonLocked(request.reservation)
            condition.unlock()
            metrics.rejected()
            throw .busy(queued: queued, waitingFor: reason, retryAfter: retry)
        }
        // Admitted here when it fits, so the queue holds only requests that really wait (the
        // stepping thread may be busy for a whole round before it looks).
        if fitsNow { admitLocked(job) } else { waiting.append(job) }
        publishLocked()
        condition.signal()
        condition.unlock()
        continuation.onTermination = { [weak self, weak job] _ in
            guard let self, let job else { return }
            self.cancel(job)
        }
        return (job, stream)
    }

    /// Cancels a request: a queued one leaves the queue now, an admitted one at its next step.
    func cancel(_ job: GenerationJob) {
        job.markCancelled()
        condition.lock()
        var dequeued = false
        if let i = waiting.firstIndex(where: { $0 === job }) {
            waiting.remove(at: i)
            metrics.setQueue(length: waiting.count)
            dequeued = true
        }
        condition.signal()
        condition.unlock()
        if dequeued {
            metrics.cancelled(evictions: 0)
            job.events.finish()  // calls onTermination, which comes back here: not under the lock
        }
    }

    /// Stops admitting: new requests get 503, queued ones are refused; admitted ones run on.
    func stopAccepting() {
        condition.lock()
        accepting = false
        let refused = waiting
        waiting.removeAll()
        metrics.setQueue(length: 0)
        condition.signal()
        condition.unlock()
        for job in refused {
            job.events.yield(.failed(.shuttingDown()))
            job.events.finish()
        }
    }

    /// Requests admitted and not finished.
    var activeCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return active.count
    }

    /// Cuts every admitted request at its next step; each client gets a 503 `shutting_down`
    /// (a stream: an error event), never an answer that looks complete.
    func cancelAll() {
        condition.lock()
        let all = active
        condition.unlock()
        for job in all { job.markCutByShutdown() }
    }

    /// Ends the stepping thread after the admitted requests are done or cancelled.
    func stop() {
        stopAccepting()
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    /// What a request waits for, said in the 503: a free slot or KV memory (or both). Caller holds the lock.
    private func waitReasonLocked(_ reservation: Int) -> String {
        var reasons: [String] = []
        if active.count >= maxActive { reasons.append("all \(maxActive) active slots are taken") }
        let free = poolBytes - reserved
        if reservation > free {
            reasons.append("KV memory: this request reserves \(reservation) bytes and \(max(0, free)) of the pool's \(poolBytes) are free")
        }
        if reasons.isEmpty { reasons.append("the \(waiting.count) requests ahead of it (first come, first served)") }
        return reasons.joined(separator: "; ")
    }

    private func retryAfterLocked() -> Int {
        let rounds = Double(waiting.count + 1) / Double(max(1, min(maxActive, max(active.count, 1))))
        return max(1, min(60, Int((averageJobSeconds * rounds).rounded(.up))))
    }

    // MARK: Stepping thread

    private func loop() {
        while true {
            condition.lock()
            admitLocked()
            while active.isEmpty && !stopped {
                condition.wait()
                admitLocked()
            }
            if active.isEmpty && stopped {
                running = false
                condition.unlock()
                return
            }
            let round = active
            condition.unlock()

            for job in round where job.session == nil && !job.done { open(job) }
            step(round)
            // Retire what ended.
            var inUse = 0, memoryInUse = 0
            var finished: [GenerationJob] = []
            for job in round {
                if job.isCancelled && !job.done { finishCancelled(job) }
                if job.done { finished.append(job) } else {
                    inUse += job.session?.kvBytes ?? 0
                    memoryInUse += job.session?.memoryBytes ?? 0
                }
            }
            condition.lock()
            if !finished.isEmpty {
                active.removeAll { job in finished.contains { $0 === job } }
                for job in finished {
                    reserved -= job.request.reservation
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - job.admitted) / 1e9
                    averageJobSeconds = 0.8 * averageJobSeconds + 0.2 * seconds
                }
            }
            metrics.setKV(inUse: inUse, memory: memoryInUse, reserved: reserved, active: active.count)
            condition.unlock()
        }
    }

    /// Moves queued requests that fit into the active set, in order. Caller holds the lock.
    private func admitLocked() {
        while let job = waiting.first {
            if job.isCancelled { waiting.removeFirst(); continue }
            guard active.count < maxActive, reserved + job.request.reservation <= poolBytes else { break }
            waiting.removeFirst()
            admitLocked(job)
        }
        publishLocked()
    }

    /// Reports the queue and the reservations to the metrics. Caller holds the lock.
    private func publishLocked() {
        metrics.setQueue(length: waiting.count)
        metrics.setKV(inUse: nil, reserved: reserved, active: active.count)
    }

    /// Reserves the job's bytes and makes it active. Caller holds the lock and checked the fit.
    private func admitLocked(_ job: GenerationJob) {
        reserved += job.request.reservation
        job.admitted = DispatchTime.now().uptimeNanoseconds
        active.append(job)
        job.events.yield(.admitted)
        metrics.admitted(queueSeconds: Double(job.admitted - job.enqueued) / 1e9)
    }

    /// Makes the job's session (on this thread: the memory is the scheduler's to account).
    private func open(_ job: GenerationJob) {
        guard !job.isCancelled else { return }  // retired by the round
        do {
            let session = try engine.makeSession(cache: job.request.cache)
            session.prepare(contextTokens: job.request.promptTokens.count)
            job.session = session
        } catch {
            fail(job, error)
        }
    }

    /// One batched step: every decoding job's next token, then prompt chunks, least served first.
    private func step(_ round: [GenerationJob]) {
        let running = round.filter { !$0.done && $0.session != nil && !$0.isCancelled }
        var jobs: [GenerationJob] = []
        var items: [BatchStepper.Item] = []
        for job in running where !job.isPrefilling {
            guard let session = job.session, let decoding = job.decoding else { continue }
            job.decoding = nil  // the item holds the only copy: the sampler's buffers change in place
            jobs.append(job)
            items.append(BatchStepper.Item(session: session, work: .decode(decoding)))
        }
        var rows = items.reduce(0) { $0 + $1.rows }
        var prefills = 0
        for job in running.filter(\.isPrefilling).sorted(by: { $0.served < $1.served }) {
            guard let session = job.session else { continue }
            let prompt = job.request.promptTokens
            let n = min(job.request.cache.chunk, prompt.count - job.fed)
            if prefills > 0 && rows + n > maxBatchTokens { break }
            jobs.append(job)
            items.append(BatchStepper.Item(session: session, work: .prefill(prompt[job.fed..<(job.fed + n)])))
            rows += n
            prefills += 1
        }
        guard !items.isEmpty else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let chunk = jobs.map(\.request.cache.chunk).max() ?? 1
            if stepper == nil || stepper!.maxTokens < max(maxBatchTokens, chunk + maxActive) {
                stepper = BatchStepper(engine: engine, maxTokens: max(maxBatchTokens, chunk + maxActive))
            }
            try stepper!.step(&items)
        } catch {
            for (job, item) in zip(jobs, items) {
                job.decoding = item.decoding
                fail(job, error)
            }
            return
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        metrics.stepped(sequences: items.count, rows: rows)
        for (job, item) in zip(jobs, items) {
            job.served += elapsed * UInt64(max(1, item.rows)) / UInt64(max(1, rows))
            if case .decode(let decoding) = item.work { job.decoding = decoding }
            if let error = item.error {
                fail(job, error)
                continue
            }
            switch item.work {
            case .prefill(let chunk): finishedChunk(job, tokens: chunk.count)
            case .decode: delivered(job, token: item.token)
            }
        }
    }

    /// After a prompt chunk ran: at the prompt's end, compress (prefill-then-compress) and start decoding.
    private func finishedChunk(_ job: GenerationJob, tokens: Int) {
        job.fed += tokens
        metrics.promptTokens(tokens)
        guard !job.isPrefilling, let session = job.session else { return }
        session.finishPrompt()
        job.prefillDone = DispatchTime.now().uptimeNanoseconds
        job.decoding = session.startDecoding(job.generation)
        if let reason = job.decoding?.finishReason { complete(job, reason: reason.rawValue); return }
        // The first token needs no forward pass (the prompt's logits are there): send it now
        // rather than a step later, for the time to first token.
        do {
            delivered(job, token: try session.decodeStep(&job.decoding!))
        } catch {
            fail(job, error)
        }
    }

    /// After a decoding step: streams the token's text, or ends the job.
    private func delivered(_ job: GenerationJob, token: Int?) {
        guard let next = token else {
            complete(job, reason: (job.decoding?.finishReason ?? .stop).rawValue)
            return
        }
        metrics.generatedTokens(1)
        let (piece, stopped) = job.text.append(next)
        if !piece.isEmpty { job.events.yield(.text(piece)) }
        if stopped { complete(job, reason: "stop"); return }
        if let reason = job.decoding?.finishReason { complete(job, reason: reason.rawValue) }
    }

    private func complete(_ job: GenerationJob, reason: String) {
        guard let session = job.session else { return }
        let rest = job.text.finish()
        if !rest.isEmpty { job.events.yield(.text(rest)) }
        let now = DispatchTime.now().uptimeNanoseconds
        let report = session.cacheReport()
        metrics.completed(evictions: report.evictions)
        job.events.yield(.finished(JobSummary(
            finishReason: reason, promptTokens: job.request.promptTokens.count, completionTokens: job.completionTokens,
            cache: report, queueSeconds: Double(job.admitted - job.enqueued) / 1e9,
            prefillSeconds: Double(job.prefillDone - job.admitted) / 1e9,
            decodeSeconds: Double(now - job.prefillDone) / 1e9)))
        release(job)
    }

    /// Ends a cancelled job: frees its session now.
    private func finishCancelled(_ job: GenerationJob) {
        metrics.cancelled(evictions: job.session?.cacheReport().evictions ?? 0)
        if job.isCutByShutdown { job.events.yield(.failed(.shuttingDown())) }
        release(job)
    }

    private func release(_ job: GenerationJob) {
        job.events.finish()
        job.session = nil
        job.done = true
    }

    private func fail(_ job: GenerationJob, _ error: any Error) {
        let apiError: APIError
        switch error {
        case let e as APIError: apiError = e
        case EngineError.promptTooLong(let tokens, let limit): apiError = .exceedsContext(promptTokens: tokens, contextLength: limit)
        case let e as EngineError: apiError = .invalidRequest(e.description)
        default: apiError = .internalError("generation failed: \(error)")
        }
        metrics.failed()
        job.events.yield(.failed(apiError))
        release(job)
    }
}
