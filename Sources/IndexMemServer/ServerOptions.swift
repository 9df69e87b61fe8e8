// IndexMem — server. Apache-2.0.

import IndexMem

// MARK: - Server configuration

/// How `indexmem serve` runs. Run configuration only; the model is the `Engine`'s.
public struct ServerOptions: Sendable {
    /// Address to bind (loopback unless told otherwise).
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one (reported by `onListening`).
    public var port: Int = 8080
    /// Cache settings of a request that names none (`kv_policy`, `kv_budget`, ...).
    public var cache = CacheConfiguration()
    /// The global KV byte pool; nil means room for 4 sequences of the model's full context.
    public var kvPoolBytes: Int? = nil
    /// Requests that may wait for KV memory; one more gets 503 with `Retry-After`.
    public var maxQueue: Int = 32
    /// Requests that hold a session at once (each also has a few MB of scratch).
    public var maxActive: Int = 8
    /// Token rows of one batched step: every decoding request's next token plus prompt chunks
    /// up to this total (at least one chunk per step, so prompts always progress).
    public var maxBatchTokens: Int = 256
    /// Largest request body accepted (413 above).
    public var maxBodyBytes: Int = 4 << 20
    /// Largest text /tokenize reads (`content`) or /detokenize writes, in UTF-8 bytes (413
    /// above): their working memory (ids, pieces, the answer) is a few times this.
    public var maxTokenizeBytes: Int = 1 << 20
    /// /tokenize and /detokenize requests that run at once; more wait (up to `maxQueue`), then 503.
    public var maxTokenizeActive: Int = 2
    /// Largest size of all request headers (400 above).
    public var maxHeaderBytes: Int = 32 << 10
    /// `max_tokens` of a request that gives none (capped by the context left).
    public var defaultMaxTokens: Int = 512
    /// The model id clients send (default: the file name without `.gguf`).
    public var modelAlias: String? = nil
    /// On SIGTERM/SIGINT, seconds that running requests may take to finish before they are cut.
    public var shutdownGraceSeconds: Double = 30

    public init() {}

    /// The pool for a model: the option, or 4 full-context sequences.
    public func resolvedPoolBytes(model m: ModelConfiguration) -> Int {
        kvPoolBytes ?? 4 * m.contextLength * m.kvBytesPerToken
    }

    /// Parses a byte count: `1048576`, `64M`, `64MiB`, `1.5G`, `512k` (powers of 1024).
    public static func parseBytes(_ text: String) -> Int? {
        var t = text.trimmingCharacters(in: " ").lowercased()
        for suffix in ["ib", "b"] where t.hasSuffix(suffix) { t.removeLast(suffix.count); break }
        var scale = 1.0
        if let last = t.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][String(last)] {
            scale = pow1024(power)
            t.removeLast()
        }
        guard let value = Double(t), value >= 0, value.isFinite else { return nil }
        let bytes = value * scale
        guard bytes < 9e18 else { return nil }
        return Int(bytes)
    }

    private static func pow1024(_ n: Int) -> Double { (0..<n).reduce(1.0) { v, _ in v * 1024 } }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s.removeFirst() }
        while s.last == character { s.removeLast() }
        return String(s)
    }
}
