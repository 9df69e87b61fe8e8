// IndexMem — server. Apache-2.0.

import IndexMem

// MARK: - Incremental text with stop strings

/// Turns generated token ids into text as they arrive: holds back an incomplete UTF-8
/// character, and any tail that could still become one of the stop strings (llama.cpp's
/// partial-stop rule), so a stop string never reaches the client.
package struct TextStream {
    /// The stop strings, empty ones dropped.
    let stops: [String]
    /// The same, as characters (for the partial-stop test on every token).
    private let stopCharacters: [[Character]]
    /// Whole UTF-8 characters out of token bytes.
    private var decoder: TextAccumulator
    /// Text decoded and not yet sent (a possible start of a stop string).
    private var held = ""
    /// A stop string was met: nothing after it is sent.
    private var stopped = false

    package init(tokenizer: any Tokenizer, stops: [String]) {
        decoder = TextAccumulator(tokenizer: tokenizer)
        self.stops = stops.filter { !$0.isEmpty }
        stopCharacters = self.stops.map(Array.init)
    }

    /// Adds a token. Returns the text that may be sent now and whether a stop string was met
    /// (then the text is cut just before it and nothing more should be generated).
    package mutating func append(_ id: Int) -> (text: String, stopped: Bool) {
        guard !stops.isEmpty else { return (decoder.append(id), false) }  // nothing is ever held
        held += decoder.append(id)
        if let cut = earliestStop() {
            let out = String(held[..<cut])
            held = ""
            stopped = true
            return (out, true)
        }
        let keep = partialStopLength()
        let sendable = held.index(held.endIndex, offsetBy: -keep)
        let out = String(held[..<sendable])
        held = String(held[sendable...])
        return (out, false)
    }

    /// The rest, at the end of generation (an incomplete character becomes U+FFFD); nothing
    /// after a stop string (the bytes of a character begun after it included).
    package mutating func finish() -> String {
        guard !stopped else { return "" }
        let out = held + decoder.flush()
        held = ""
        return out
    }

    /// Where the first stop string starts in `held`, if one is there.
    private func earliestStop() -> String.Index? {
        var best: String.Index? = nil
        for stop in stops {
            if let r = held.firstRange(of: stop), best.map({ r.lowerBound < $0 }) ?? true { best = r.lowerBound }
        }
        return best
    }

    /// Characters at the end of `held` that are a proper prefix of some stop string.
    private func partialStopLength() -> Int {
        let heldCount = held.count
        var longest = 0
        for stop in stopCharacters {
            var n = min(stop.count - 1, heldCount)
            while n > longest {
                // `held` ends with the first n characters of the stop string (compared from
                // the end, lazily: nothing is copied).
                if held.reversed().starts(with: stop[..<n].reversed()) { longest = n; break }
                n -= 1
            }
        }
        return longest
    }
}
