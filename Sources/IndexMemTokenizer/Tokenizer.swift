// IndexMem — tokenizer. Apache-2.0.

// MARK: - Tokenizer protocol

/// Turns text into token ids and back, as llama.cpp does for the same vocabulary.
public protocol Tokenizer: Sendable {
    var vocabulary: TokenizerVocabulary { get }

    /// Token ids of `text`.
    /// - Parameters:
    ///   - addSpecial: add BOS/EOS as the vocabulary says (`addBos`, `addEos`).
    ///   - parseSpecial: match control tokens written in the text (e.g. `<|im_start|>`);
    ///     otherwise they are tokenized as plain text. User-defined tokens always match.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int]

    /// Token ids of `text` with control tokens matched everywhere except inside `literal`:
    /// sorted, non-overlapping UTF-8 byte ranges that are text whatever they contain (a chat
    /// message's content, so `<|im_end|>` typed by a user cannot end its turn). Text on both
    /// sides of a range boundary is one fragment, so the ids equal `parseSpecial` encoding of
    /// the same text whenever the ranges hold no control token.
    func encode(_ text: String, addSpecial: Bool, literal: [Range<Int>]) -> [Int]

    /// The bytes one token stands for. Control tokens give their text only with `special`.
    func pieceBytes(_ id: Int, special: Bool) -> [UInt8]

    /// Whether `decode` drops one leading space of the first token: encoding added it.
    var decodeDropsLeadingSpace: Bool { get }
}

extension Tokenizer {
    /// The bytes one token stands for (control tokens give nothing).
    public func pieceBytes(_ id: Int) -> [UInt8] { pieceBytes(id, special: false) }

    public var decodeDropsLeadingSpace: Bool { false }

    /// The text of a token sequence. Invalid UTF-8 (a sequence cut inside a character)
    /// becomes U+FFFD.
    /// Like llama.cpp's `llama_detokenize`, a tokenizer that prefixes text with a space drops
    /// one leading space of the first token (`decodeDropsLeadingSpace`).
    public func decode(_ ids: [Int], special: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += pieceBytes(id, special: special) }
        if decodeDropsLeadingSpace, let first = ids.first,
           bytes.first == 0x20, pieceBytes(first, special: special).first == 0x20 {
            bytes.removeFirst()
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of a token text, if the vocabulary has it.
    public func tokenId(of text: String) -> Int? {
        vocabulary.tokens.firstIndex(of: text)
    }
}

/// The tokenizer for a vocabulary.
/// - Throws: `TokenizerError` for an unsupported model or pre-tokenizer, or inconsistent arrays.
public func makeTokenizer(vocabulary: TokenizerVocabulary) throws(TokenizerError) -> any Tokenizer {
    switch vocabulary.model {
    case "gpt2": return try ByteLevelBPETokenizer(vocabulary: vocabulary)
    case "llama": return try SentencePieceTokenizer(vocabulary: vocabulary)
    default: throw .unsupportedModel(vocabulary.model)
    }
}

// MARK: - Special-token partition

/// Splits text around special tokens, longest token first, as llama.cpp's
/// `tokenizer_st_partition`: the result is raw byte ranges and token ids, in order.
struct SpecialTokenMatcher: Sendable {
    enum Fragment: Equatable {
        /// A range of the text's UTF-8 bytes.
        case text(Range<Int>)
        case token(Int)
    }

    /// (id, UTF-8 bytes, is control-or-unknown), longest text first, ties by id.
    private let specials: [(id: Int, bytes: [UInt8], controlOrUnknown: Bool)]

    init(vocabulary: TokenizerVocabulary) {
        var list: [(id: Int, bytes: [UInt8], controlOrUnknown: Bool)] = []
        for (id, type) in vocabulary.tokenTypes.enumerated() {
            switch type {
            case .control, .userDefined, .unknown:
                let bytes = Array(vocabulary.tokens[id].utf8)
                if !bytes.isEmpty { list.append((id, bytes, type != .userDefined)) }
            default: break
            }
        }
        // Ties by id (llama.cpp's std::sort leaves them unspecified; equal-length specials
        // that overlap in text do not occur in real vocabularies).
        list.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        specials = list
    }

    /// The fragments of `bytes` (a text's UTF-8). Control (and unknown) tokens match only
    /// with `parseSpecial`, and then not where they overlap a `literal` range (sorted,
    /// non-overlapping): there they stay text.
    func partition(_ bytes: [UInt8], parseSpecial: Bool, literal: [Range<Int>] = []) -> [Fragment] {
        var fragments: [Fragment] = bytes.isEmpty ? [] : [.text(0..<bytes.count)]
        for special in specials where parseSpecial || !special.controlOrUnknown {
            let protected = special.controlOrUnknown ? literal : []
            var next: [Fragment] = []
            next.reserveCapacity(fragments.count)
            for fragment in fragments {
                guard case .text(let range) = fragment else { next.append(fragment); continue }
                var start = range.lowerBound  // text not yet emitted starts here
                var from = start              // the search goes on from here
                while let found = Self.find(special.bytes, in: bytes, from: from, to: range.upperBound) {
                    let end = found + special.bytes.count
                    if Self.overlaps(found..<end, protected) { from = found + 1; continue }
                    if found > start { next.append(.text(start..<found)) }
                    next.append(.token(special.id))
                    start = end
                    from = end
                }
                if start < range.upperBound { next.append(.text(start..<range.upperBound)) }
            }
            fragments = next
        }
        return fragments
    }

    /// Whether `range` shares a byte with one of `sorted` (binary search: a chat may have
    /// thousands of messages).
    private static func overlaps(_ range: Range<Int>, _ sorted: [Range<Int>]) -> Bool {
        var low = 0, high = sorted.count
        while low < high {  // the first range ending after range.lowerBound
            let mid = (low + high) / 2
            if sorted[mid].upperBound <= range.lowerBound { low = mid + 1 } else { high = mid }
        }
        return low < sorted.count && sorted[low].lowerBound < range.upperBound
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int, to: Int) -> Int? {
        let n = needle.count
        guard n > 0, to - from >= n else { return nil }
        let first = needle[0]
        var i = from
        while i + n <= to {
            if hay[i] == first {
                var j = 1
                while j < n && hay[i + j] == needle[j] { j += 1 }
                if j == n { return i }
            }
            i += 1
        }
        return nil
    }
}
