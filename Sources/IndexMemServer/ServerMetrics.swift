// IndexMem — server. Apache-2.0.

import Foundation
import IndexMem
import Synchronization

// MARK: - Metrics

/// Counters and gauges of the server, rendered as Prometheus text by `GET /metrics`.
final class ServerMetrics: Sendable {
    private struct State {
        var requests: [String: Int] = [:]  // "route code" -> count
        var rejected = 0
        var cancelled = 0
        var failed = 0
        var completed = 0
        var admitted = 0
        var queueSecondsSum = 0.0
        var promptTokens = 0
        var generatedTokens = 0
        var evictions = 0
        var poolBytes = 0
        var reserved = 0
        var reservedMax = 0
        var inUse = 0
        var inUseMax = 0
        var memoryInUse = 0
        var queue = 0
        var queueMax = 0
        var active = 0
        var batchSteps = 0
        var batchSequences = 0
        var batchRows = 0
        var batchSequencesMax = 0
        /// Tokens per whole second of uptime, the last `rateWindow` seconds.
        var promptRate = RateWindow()
        var generatedRate = RateWindow()
    }

    private let state = Mutex(State())
    let started = Date()

    func request(route: String, status: Int) {
        state.withLock { $0.requests["\(route) \(status)", default: 0] += 1 }
    }
    func rejected() { state.withLock { $0.rejected += 1 } }
    func cancelled(evictions: Int) { state.withLock { $0.cancelled += 1; $0.evictions += evictions } }
    func failed() { state.withLock { $0.failed += 1 } }
    func completed(evictions: Int) { state.withLock { $0.completed += 1; $0.evictions += evictions } }
    func admitted(queueSeconds: Double) { state.withLock { $0.admitted += 1; $0.queueSecondsSum += queueSeconds } }
    func promptTokens(_ n: Int) { state.withLock { $0.promptTokens += n; $0.promptRate.add(n) } }
    func generatedTokens(_ n: Int) { state.withLock { $0.generatedTokens += n; $0.generatedRate.add(n) } }
    /// One batched forward pass of `sequences` requests and `rows` token rows.
    func stepped(sequences: Int, rows: Int) {
        state.withLock {
            $0.batchSteps += 1
            $0.batchSequences += sequences
            $0.batchRows += rows
            $0.batchSequencesMax = max($0.batchSequencesMax, sequences)
        }
    }
    func setPool(bytes: Int) { state.withLock { $0.poolBytes = bytes } }

    func setQueue(length: Int) {
        state.withLock { $0.queue = length; $0.queueMax = max($0.queueMax, length) }
    }

    /// - Parameters:
    ///   - inUse: KV bytes held by live sessions (nil: unchanged).
    ///   - memory: latent-memory bytes held by live sessions (nil: unchanged).
    func setKV(inUse: Int?, memory: Int? = nil, reserved: Int, active: Int) {
        state.withLock {
            if let inUse { $0.inUse = inUse; $0.inUseMax = max($0.inUseMax, inUse) }
            if let memory { $0.memoryInUse = memory }
            $0.reserved = reserved
            $0.reservedMax = max($0.reservedMax, reserved)
            $0.active = active
        }
    }

    /// Prometheus text exposition format 0.0.4.
    func render() -> String {
        let s = state.withLock { $0 }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP indexmem_\(name) \(help)\n# TYPE indexmem_\(name) \(type)\n"
            for (labels, value) in samples { out += "indexmem_\(name)\(labels) \(value)\n" }
        }
        func one(_ name: String, _ type: String, _ help: String, _ value: Int) { metric(name, type, help, [("", String(value))]) }
        func oneD(_ name: String, _ type: String, _ help: String, _ value: Double) { metric(name, type, help, [("", String(format: "%.3f", value))]) }

        let requests = s.requests.sorted { $0.key < $1.key }.map { key, count -> (String, String) in
            let parts = key.split(separator: " ", maxSplits: 1)
            return ("{route=\"\(parts[0])\",code=\"\(parts.count > 1 ? parts[1] : "")\"}", String(count))
        }
        metric("http_requests_total", "counter", "HTTP requests answered, by route and status.", requests)
        one("requests_admitted_total", "counter", "Generation requests admitted into the KV pool.", s.admitted)
        one("requests_completed_total", "counter", "Generation requests that finished.", s.completed)
        one("requests_rejected_total", "counter", "Generation requests refused with 503 because the queue was full.", s.rejected)
        one("requests_cancelled_total", "counter", "Generation requests whose client went away (memory freed at once).", s.cancelled)
        one("requests_failed_total", "counter", "Generation requests that failed after admission.", s.failed)
        one("requests_active", "gauge", "Requests holding a session now.", s.active)
        one("queue_length", "gauge", "Requests waiting for KV memory now.", s.queue)
        one("queue_length_max", "gauge", "Most requests waiting at once since start.", s.queueMax)
        oneD("queue_wait_seconds_sum", "counter", "Seconds admitted requests spent waiting.", s.queueSecondsSum)
        one("prompt_tokens_total", "counter", "Prompt tokens prefilled.", s.promptTokens)
        one("generated_tokens_total", "counter", "Tokens generated.", s.generatedTokens)
        oneD("prompt_tokens_per_second", "gauge", "Prompt tokens per second over the last \(RateWindow.seconds) s.", s.promptRate.perSecond())
        oneD("generated_tokens_per_second", "gauge", "Generated tokens per second over the last \(RateWindow.seconds) s.",
             s.generatedRate.perSecond())
        one("kv_pool_bytes", "gauge", "The global KV byte pool (--kv-pool-bytes).", s.poolBytes)
        one("kv_bytes_reserved", "gauge", "KV bytes reserved by admitted requests now (never above the pool).", s.reserved)
        one("kv_bytes_reserved_max", "gauge", "Most KV bytes reserved at once since start.", s.reservedMax)
        one("kv_bytes_in_use", "gauge", "KV bytes held by live sessions now.", s.inUse)
        one("kv_bytes_in_use_max", "gauge", "Most KV bytes held at once since start.", s.inUseMax)
        one("memory_bytes_in_use", "gauge", "Latent-memory bytes held by live sessions now (reserved from the pool with their KV bytes).", s.memoryInUse)
        one("batch_steps_total", "counter", "Batched forward passes run (continuous batching).", s.batchSteps)
        one("batch_sequences_total", "counter", "Requests advanced, summed over batched steps (divided by the steps: the mean batch size).", s.batchSequences)
        one("batch_rows_total", "counter", "Token rows run, summed over batched steps (decode tokens and prompt tokens).", s.batchRows)
        one("batch_sequences_max", "gauge", "Most requests advanced in one step since start.", s.batchSequencesMax)
        one("evictions_total", "counter", "KV entries evicted (per layer and KV head) by finished requests.", s.evictions)
        one("resident_bytes", "gauge", "Resident memory of the process.", ResourceUsage.residentBytes())
        one("resident_bytes_peak", "gauge", "Peak resident memory of the process.", ResourceUsage.peakResidentBytes())
        oneD("uptime_seconds", "gauge", "Seconds since the server started.", Date().timeIntervalSince(started))
        return out
    }
}

// MARK: - Rate over a sliding window

/// Counts per second of uptime over the last few seconds.
struct RateWindow {
    static let seconds = 10
    private var buckets = [Int](repeating: 0, count: RateWindow.seconds)
    private var bucketSecond = [Int](repeating: -1, count: RateWindow.seconds)

    private static func now() -> Int { Int(DispatchTime.now().uptimeNanoseconds / 1_000_000_000) }

    mutating func add(_ n: Int) {
        let t = Self.now(), i = t % Self.seconds
        if bucketSecond[i] != t { bucketSecond[i] = t; buckets[i] = 0 }
        buckets[i] += n
    }

    /// Average per second over the last complete window (the current second included).
    func perSecond() -> Double {
        let t = Self.now()
        var total = 0
        for i in 0..<Self.seconds where bucketSecond[i] > t - Self.seconds { total += buckets[i] }
        return Double(total) / Double(Self.seconds)
    }
}
