// IndexMem — tokenizer. Apache-2.0.
//
// SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`: Llama 1/2, Mistral, Gemma),
// as llama.cpp's `llm_tokenizer_spm_session`: the text is split around special tokens; each
// piece of plain text gets a leading space when the vocabulary says so
// (`add_space_prefix`) and it follows a special token or starts the text; spaces become
// U+2581 (▁); then, starting from one symbol per UTF-8 character, the adjacent pair whose
// concatenation is the vocabulary entry with the highest score is merged (leftmost among
// equal scores), until no pair forms an entry. Symbols that are not entries are written as
// byte tokens `<0xNN>` (byte fallback).

// MARK: - Byte-string lookup

/// Token id of a byte string, with no allocation per lookup (open addressing over FNV-1a
/// hashes of the entries' bytes). Later entries win over earlier ones with the same text,
/// as llama.cpp's `token_to_id` map.
struct ByteStringTable: Sendable {
    private let bytes: [UInt8]
    private let offsets: [Int]        // (count + 1) start of each entry's bytes
    private let slots: [Int32]        // entry index + 1, 0 = empty
    private let mask: Int

    init(_ entries: [[UInt8]]) {
        var flat: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(entries.count + 1)
        for e in entries { flat += e; offsets.append(flat.count) }
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: 0, count: capacity)
        let mask = capacity - 1
        for (i, e) in entries.enumerated() {
            var s = Int(Self.hash(e[...]) & UInt64(mask))
            while slots[s] != 0 {
                let j = Int(slots[s]) - 1
                if flat[offsets[j]..<offsets[j + 1]].elementsEqual(e) { break }
                s = (s + 1) & mask
            }
            slots[s] = Int32(i + 1)
        }
        self.bytes = flat
        self.offsets = offsets
        self.slots = slots
        self.mask = mask
    }

    @inline(__always)
    static func hash(_ b: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }

    /// The id of the entry equal to `key`, if any.
    func lookup(_ key: ArraySlice<UInt8>) -> Int? {
        var s = Int(Self.hash(key) & UInt64(mask))
        while true {
            let v = slots[s]
            if v == 0 { return nil }
            let j = Int(v) - 1
            if offsets[j + 1] - offsets[j] == key.count && bytes[offsets[j]..<offsets[j + 1]].elementsEqual(key) { return j }
            s = (s + 1) & mask
        }
    }
}

// MARK: - Tokenizer

public struct SentencePieceTokenizer: PieceTableTokenizer {
    public let vocabulary: TokenizerVocabulary
    let specials: SpecialTokenMatcher
    let table: ByteStringTable
    /// Token of each byte for the fallback: `<0xNN>`, else the one-byte entry, else -1.
    let byteTokens: [Int32]
    /// Bytes each token stands for when decoded (see `pieceBytes`).
    let pieces: [[UInt8]]
    let scores: [Float]

    public init(vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        try vocabulary.validate()
        self.vocabulary = vocabulary
        specials = SpecialTokenMatcher(vocabulary: vocabulary)
        // llama.cpp names empty entries "[EMPTY_<id>]".
        let texts = vocabulary.tokens.enumerated().map { $1.isEmpty ? Array("[EMPTY_\($0)]".utf8) : Array($1.utf8) }
        table = ByteStringTable(texts)
        scores = vocabulary.scores.isEmpty ? Array(repeating: 0, count: texts.count) : vocabulary.scores
        let hex = Array("0123456789ABCDEF".utf8)
        let table = self.table
        byteTokens = (0..<256).map { b in
            let name: [UInt8] = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
            return Int32(table.lookup(name[...]) ?? table.lookup([UInt8(b)][...]) ?? -1)
        }
        pieces = texts.enumerated().map { id, text in
            switch vocabulary.tokenTypes[id] {
            case .normal: return Self.unescape(text)
            case .byte:
                // `<0xNN>`
                guard text.count == 6, let v = UInt8(String(decoding: text[3..<5], as: UTF8.self), radix: 16) else { return [] }
                return [v]
            case .control, .unknown, .userDefined: return text
            case .unused, .undefined: return []
            }
        }
    }

    /// `add_space_prefix`: encoding put a space before the text, decoding takes it away.
    public var decodeDropsLeadingSpace: Bool { vocabulary.addSpacePrefix }

    /// ▁ (E2 96 81) back to a space.
    static func unescape(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if i + 2 < text.count && text[i] == 0xE2 && text[i + 1] == 0x96 && text[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial, literal: [])
    }

    public func encode(_ text: String, addSpecial: Bool, literal: [Range<Int>]) -> [Int] {
        encode(text, addSpecial: addSpecial, parseSpecial: true, literal: literal)
    }

    private func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool, literal: [Range<Int>]) -> [Int] {
        var out: [Int] = []
        if addSpecial && vocabulary.addBos, let bos = vocabulary.bosTokenId { out.append(bos) }
        let bytes = Array(text.utf8)
        var previousIsSpecial = true
        var piece: [UInt8] = []
        for fragment in specials.partition(bytes, parseSpecial: parseSpecial, literal: literal) {
            switch fragment {
            case .token(let id):
                out.append(id)
                previousIsSpecial = true
            case .text(let range):
                piece.removeAll(keepingCapacity: true)
                if vocabulary.addSpacePrefix && previousIsSpecial { piece += [0xE2, 0x96, 0x81] }
                for b in bytes[range] {
                    if b == 0x20 { piece += [0xE2, 0x96, 0x81] } else { piece.append(b) }
                }
                encodePiece(piece, into: &out)
                previousIsSpecial = false
            }
        }
        if addSpecial && vocabulary.addEos, let eos = vocabulary.eosTokenId { out.append(eos) }
        return out
    }

    // MARK: Merging

    /// `llm_tokenizer_spm_session::tokenize` on escaped text.
    private func encodePiece(_ text: [UInt8], into out: inout [Int]) {
        guard !text.isEmpty else { return }
        // One symbol per UTF-8 character: (start, length), linked as a list.
        var start: [Int] = [], length: [Int] = []
        var offset = 0
        while offset < text.count {
            let lead = text[offset]
            let n = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let len = min(n, text.count - offset)
            start.append(offset)
            length.append(len)
            offset += len
        }
        let count = start.count
        var next = Array(1...count)
        next[count - 1] = -1
        var prev = Array(-1..<(count - 1))
        var queue = MergeQueue<ScoredBigram>()
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let s = start[left], size = length[left] + length[right]
            guard let id = table.lookup(text[s..<(s + size)]) else { return }
            queue.push(ScoredBigram(score: scores[id], left: Int32(left), right: Int32(right), size: Int32(size)))
        }
        for i in 1..<count { consider(i - 1, i) }
        while let b = queue.pop() {
            let l = Int(b.left), r = Int(b.right)
            // Stale: a side was merged since (sizes are exact, see llama.cpp).
            if length[l] == 0 || length[r] == 0 || length[l] + length[r] != Int(b.size) { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[next[r]] = l }
            consider(prev[l], l)
            consider(l, next[l])
        }
        var i = 0
        while i != -1 {
            let s = start[i], range = s..<(s + length[i])
            if let id = table.lookup(text[range]) {
                out.append(id)
            } else {
                for b in text[range] {
                    let t = byteTokens[Int(b)]
                    if t >= 0 { out.append(Int(t)) }
                }
            }
            i = next[i]
        }
    }
}

// MARK: - Merge queue

struct ScoredBigram: MergeCandidate {
    var score: Float
    var left: Int32
    var right: Int32
    var size: Int32

    /// Higher score first, then the leftmost pair.
    @inline(__always) func precedes(_ o: ScoredBigram) -> Bool { score != o.score ? score > o.score : left < o.left }
}
