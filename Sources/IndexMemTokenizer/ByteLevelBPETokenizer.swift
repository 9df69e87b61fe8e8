// IndexMem — tokenizer. Apache-2.0.
//
// GPT-2 style byte-level BPE (`tokenizer.ggml.model = gpt2`): the text is split around
// special tokens, then into words by the pre-tokenizer; each word's UTF-8 bytes are mapped
// to printable code points (GPT-2's `bytes_to_unicode`) and merged pairwise by rank, lowest
// rank first and leftmost among equals, as llama.cpp's `llm_tokenizer_bpe_session`.

// MARK: - Byte-level alphabet

enum ByteLevel {
    /// The code point that stands for each byte.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each alphabet code point stands for.
    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// Bytes of a vocabulary entry written in the byte-level alphabet; code points outside
    /// it are kept as their own UTF-8.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { out += Array(String(s).utf8) }
        }
        return out
    }
}

// MARK: - Tokenizer

public struct ByteLevelBPETokenizer: PieceTableTokenizer {
    public let vocabulary: TokenizerVocabulary
    let preTokenizer: PreTokenizer
    let specials: SpecialTokenMatcher
    /// Token id of each byte's alphabet code point (-1 if the vocabulary lacks it).
    let byteTokens: [Int32]
    /// (left id << 32 | right id) -> (rank, merged id).
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    let idOfText: [String: Int32]
    /// Decoded bytes of every token, by id.
    let pieces: [[UInt8]]

    public init(vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        try vocabulary.validate()
        self.vocabulary = vocabulary
        preTokenizer = try PreTokenizer(name: vocabulary.preTokenizer)
        specials = SpecialTokenMatcher(vocabulary: vocabulary)
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocabulary.tokens.count)
        for (i, t) in vocabulary.tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        idOfText = ids
        byteTokens = ByteLevel.byteToScalar.map { ids[String($0)] ?? -1 }
        var table: [UInt64: (rank: Int32, merged: Int32)] = [:]
        table.reserveCapacity(vocabulary.merges.count)
        for (rank, rule) in vocabulary.merges.enumerated() {
            let parts = rule.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw .malformedMerge(index: rank, text: rule) }
            // A rule whose parts or result are not tokens can never produce a token: skip it.
            guard let l = ids[String(parts[0])], let r = ids[String(parts[1])], let m = ids[String(parts[0] + parts[1])] else { continue }
            let key = UInt64(UInt32(l)) << 32 | UInt64(UInt32(r))
            if table[key] == nil { table[key] = (Int32(rank), m) }
        }
        merges = table
        pieces = vocabulary.tokens.enumerated().map { id, text in
            switch vocabulary.tokenTypes[id] {
            case .normal, .undefined, .unused, .byte: return ByteLevel.decode(text)
            case .control, .userDefined, .unknown: return Array(text.utf8)
            }
        }
    }

    /// Bytes whose alphabet code point is not in the vocabulary: like llama.cpp, encoding drops
    /// them, so text containing them cannot round-trip (SmolLM2 lacks 21 such bytes, among
    /// them the UTF-8 lead bytes 0xF1 and 0xF2 of planes 4 to 9).
    public var bytesWithoutTokens: [UInt8] { (0..<256).filter { byteTokens[$0] < 0 }.map(UInt8.init) }

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
        for fragment in specials.partition(bytes, parseSpecial: parseSpecial, literal: literal) {
            switch fragment {
            case .token(let id): out.append(id)
            case .text(let range): encodeText(bytes[range], into: &out)
            }
        }
        if addSpecial && vocabulary.addEos, let eos = vocabulary.eosTokenId { out.append(eos) }
        return out
    }

    // MARK: Words

    private func encodeText(_ bytes: ArraySlice<UInt8>, into out: inout [Int]) {
        let cps = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var cpStart = 0
        var word: [UInt8] = []
        for length in preTokenizer.split(cps) {
            word.removeAll(keepingCapacity: true)
            for s in cps[cpStart..<(cpStart + length)] { word += UTF8.encode(s)! }
            cpStart += length
            encodeWord(word, into: &out)
        }
    }

    private func encodeWord(_ word: [UInt8], into out: inout [Int]) {
        if preTokenizer.ignoresMerges {
            var text = String.UnicodeScalarView()
            for b in word { text.append(ByteLevel.byteToScalar[Int(b)]) }
            if let id = idOfText[String(text)] { out.append(Int(id)); return }
        }
        // One symbol per byte; symbols are merged into their left neighbour.
        let n = word.count
        var ids = word.map { byteTokens[Int($0)] }
        if n == 1 { if ids[0] >= 0 { out.append(Int(ids[0])) }; return }
        var next = Array(1...n)          // index of the next live symbol (n = none)
        var prev = Array(-1..<(n - 1))   // index of the previous live symbol (-1 = none)
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeQueue<Bigram>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r < n, ids[l] >= 0, ids[r] >= 0 else { return }
            if let m = merges[UInt64(UInt32(ids[l])) << 32 | UInt64(UInt32(ids[r]))] {
                heap.push(Bigram(rank: m.rank, left: Int32(l), right: Int32(r), leftId: ids[l], rightId: ids[r]))
            }
        }
        for i in 0..<(n - 1) { consider(i, i + 1) }
        while let b = heap.pop() {
            let l = Int(b.left), r = Int(b.right)
            // Stale: a side has changed since this pair was queued.
            guard alive[l], alive[r], next[l] == r, ids[l] == b.leftId, ids[r] == b.rightId else { continue }
            guard let m = merges[UInt64(UInt32(ids[l])) << 32 | UInt64(UInt32(ids[r]))] else { continue }
            ids[l] = m.merged
            alive[r] = false
            next[l] = next[r]
            if next[r] < n { prev[next[r]] = l }
            consider(prev[l], l)
            consider(l, next[l])
        }
        var i = 0
        while i < n {
            if ids[i] >= 0 { out.append(Int(ids[i])) }
            i = next[i]
        }
    }
}

// MARK: - Merge queue

struct Bigram: MergeCandidate {
    var rank: Int32
    var left: Int32
    var right: Int32
    var leftId: Int32
    var rightId: Int32

    /// Lower rank first, then the leftmost pair.
    @inline(__always) func precedes(_ o: Bigram) -> Bool { rank != o.rank ? rank < o.rank : left < o.left }
}
