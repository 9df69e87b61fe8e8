// IndexMem — server. Apache-2.0.

import IndexMem

// MARK: - Incremental text with stop strings

/// Turns generated token ids into text as they arrive: holds back an incomplete UTF-8
/// character, and any tail that could still become one of the stop strings (llama.cpp's
/// partial-stop rule), so a stop string never reaches the client.
package struct TextStream {
    let tokenizer: any Tokenizer
    let stops: [String]
    private var pendingBytes: [UInt8] = []
    /// Text decoded and not yet sent (a possible start of a stop string).
    private var held = ""
    /// Text sent so far.
    package private(set) var sent = ""

    package init(tokenizer: any Tokenizer, stops: [String]) {
        self.tokenizer = tokenizer
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Adds a token. Returns the text that may be sent now and whether a stop string was met
    /// (then the text is cut just before it and nothing more should be generated).
    package mutating func append(_ id: Int) -> (text: String, stopped: Bool) {
        pendingBytes += tokenizer.pieceBytes(id)
        held += takeCompleteCharacters()
        if let cut = earliestStop() {
            let out = String(held[..<cut])
            held = ""
            sent += out
            return (out, true)
        }
        let keep = partialStopLength()
        let sendable = held.index(held.endIndex, offsetBy: -keep)
        let out = String(held[..<sendable])
        held = String(held[sendable...])
        sent += out
        return (out, false)
    }

    /// The rest, at the end of generation (an incomplete character becomes U+FFFD).
    package mutating func finish() -> String {
        var out = held
        if !pendingBytes.isEmpty { out += String(decoding: pendingBytes, as: UTF8.self) }
        pendingBytes = []
        held = ""
        sent += out
        return out
    }

    private mutating func takeCompleteCharacters() -> String {
        var end = pendingBytes.count
        var back = 0
        while back < 4 && end - back - 1 >= 0 {
            let b = pendingBytes[end - back - 1]
            if b & 0xC0 == 0x80 { back += 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if need > back + 1 { end -= back + 1 }
            break
        }
        let text = String(decoding: pendingBytes[..<end], as: UTF8.self)
        pendingBytes.removeFirst(end)
        return text
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
        var longest = 0
        let chars = Array(held)
        for stop in stops {
            let s = Array(stop)
            var n = min(s.count - 1, chars.count)
            while n > longest {
                if Array(chars[(chars.count - n)...]) == Array(s[..<n]) { longest = n; break }
                n -= 1
            }
        }
        return longest
    }
}
