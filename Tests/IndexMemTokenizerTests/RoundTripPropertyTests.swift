// IndexMem — tokenizer tests. Apache-2.0.
//
// decode(encode(s)) == s for any valid UTF-8, on random strings drawn from every plane
// and from the characters pre-tokenizers treat specially (digits, apostrophes, spaces,
// newlines, punctuation, combining marks).

import IndexMemTestSupport
import IndexMemTokenizer
import Testing

@Suite("Tokenizer round trips")
struct RoundTripPropertyTests {
    /// A random valid Unicode scalar: mostly from small pools that stress the splitters.
    static func randomScalar(_ rng: inout SplitMix64) -> Unicode.Scalar {
        let pools: [[UInt32]] = [
            Array(0x20...0x7E),                         // ASCII printable
            [0x09, 0x0A, 0x0D, 0x20, 0x20, 0x20, 0xA0, 0x2028, 0x3000],   // whitespace
            [0x27, 0x73, 0x74, 0x6C, 0x6C, 0x64, 0x53, 0x44],             // 's 't 'll 'd
            Array(0x30...0x39) + [0x0660, 0x0966, 0xFF11, 0x2155],        // numbers
            [0x0301, 0x0308, 0x200D, 0xFE0F, 0x1F3FD],                    // marks, joiners
        ]
        if rng.below(4) == 0 {
            // Anywhere in Unicode except surrogates.
            while true {
                let v = UInt32(rng.below(0x110000))
                if let s = Unicode.Scalar(v) { return s }
            }
        }
        let pool = pools[rng.below(pools.count)]
        return Unicode.Scalar(pool[rng.below(pool.count)])!
    }

    @Test("decode(encode(s)) == s on 2,000 random strings the vocabulary can represent")
    func randomStrings() throws {
        let tokenizer = try #require(try SmolLM2Tokenizer.get() as? ByteLevelBPETokenizer)
        let missing = Set(tokenizer.bytesWithoutTokens)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            var s = String.UnicodeScalarView()
            let length = rng.below(40)
            while s.count < length {
                let c = Self.randomScalar(&rng)
                if UTF8.encode(c)!.allSatisfy({ !missing.contains($0) }) { s.append(c) }
            }
            let text = String(s)
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            let back = tokenizer.decode(ids)
            #expect(back == text, "round trip failed for \(Array(text.unicodeScalars.map(\.value)))")
            if back != text { return }
        }
    }

    @Test("special tokens are matched only when asked, and decode to their text with special")
    func specials() throws {
        let tokenizer = try SmolLM2Tokenizer.get()
        let text = "<|im_start|>user\nHi<|im_end|>\n"
        let parsed = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        let plain = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        #expect(parsed.count < plain.count)
        #expect(tokenizer.decode(parsed, special: true) == text)
        #expect(tokenizer.decode(parsed, special: false) == "user\nHi\n")
        #expect(tokenizer.decode(plain) == text)
    }
}
