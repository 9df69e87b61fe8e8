// IndexMem — public facade. Apache-2.0.

import IndexMemTokenizer

// MARK: - Incremental text

/// Turns token ids into text as they arrive, holding back incomplete UTF-8 sequences.
/// (`package`: the server's stop-string stream decodes through it too.)
package struct TextAccumulator {
    let tokenizer: any Tokenizer
    private var pending: [UInt8] = []

    package init(tokenizer: any Tokenizer) { self.tokenizer = tokenizer }

    /// Adds a token; returns the newly completed text.
    package mutating func append(_ id: Int) -> String {
        pending += tokenizer.pieceBytes(id)
        // Emit everything up to the last complete UTF-8 character.
        var end = pending.count
        var back = 0
        while back < 4 && end - back - 1 >= 0 {
            let b = pending[end - back - 1]
            if b & 0xC0 == 0x80 { back += 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if need > back + 1 { end -= back + 1 }
            break
        }
        let piece = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeFirst(end)
        return piece
    }

    /// The bytes of an incomplete last character, decoded (as U+FFFD), once generation has ended.
    package mutating func flush() -> String {
        guard !pending.isEmpty else { return "" }
        let rest = String(decoding: pending, as: UTF8.self)
        pending = []
        return rest
    }
}
