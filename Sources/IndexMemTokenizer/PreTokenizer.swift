// IndexMem — tokenizer. Apache-2.0.
//
// Byte-level BPE first splits text into words with a list of regular expressions, each
// applied inside the pieces the previous one produced (llama.cpp's `unicode_regex_split`).
// The expressions of the known vocabularies are written here as hand-coded scanners over
// code points, following the behaviour of llama.cpp's custom splitters (gpt2, llama3) and
// of its std::regex fallback for the others, so no regex engine is needed.

// MARK: - Code point classes

/// The classes the splitting expressions test: `\p{L}`, `\p{N}`, `\p{P}`, `\s`.
struct CodePointClass: Sendable {
    var isLetter = false
    var isNumber = false
    var isPunctuation = false
    var isWhitespace = false

    static let ascii: [CodePointClass] = (0..<128).map { of(Unicode.Scalar(UInt8($0))) }

    @inline(__always)
    static func classify(_ s: Unicode.Scalar) -> CodePointClass {
        s.value < 128 ? ascii[Int(s.value)] : of(s)
    }

    private static func of(_ s: Unicode.Scalar) -> CodePointClass {
        var c = CodePointClass()
        let p = s.properties
        c.isWhitespace = p.isWhitespace
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c.isLetter = true
        case .decimalNumber, .letterNumber, .otherNumber: c.isNumber = true
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: c.isPunctuation = true
        default: break
        }
        if c.isWhitespace { c.isLetter = false; c.isNumber = false; c.isPunctuation = false }
        return c
    }
}

// MARK: - Pre-tokenizer

/// One splitting expression.
enum SplitPass: Sendable, Equatable {
    /// `\p{N}`: every number code point alone.
    case eachNumber
    /// `\p{N}+`.
    case numberRuns
    /// `[\p{P}\$\+<=>\^~\|]+` (llama.cpp's default BPE expression).
    case punctuationRuns
    /// `[0-9][0-9][0-9]`.
    case asciiDigitTriples
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (GPT-2).
    case gpt2
    /// Llama 3's `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
    /// with `maxDigits` 1 it is Qwen 2's expression (`\p{N}` instead of `\p{N}{1,3}`).
    case llama3(maxDigits: Int)
}

/// The word splitter of a byte-level BPE vocabulary, chosen by `tokenizer.ggml.pre`.
public struct PreTokenizer: Sendable, Equatable {
    let passes: [SplitPass]
    /// Llama 3 looks a whole word up in the vocabulary before merging.
    let ignoresMerges: Bool

    static let names: [String: (passes: [SplitPass], ignoresMerges: Bool)] = {
        var t: [String: ([SplitPass], Bool)] = [:]
        for n in ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"] { t[n] = ([.eachNumber, .gpt2], false) }
        for n in ["gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling"] { t[n] = ([.gpt2], false) }
        for n in ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"] { t[n] = ([.llama3(maxDigits: 3)], true) }
        for n in ["qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"] { t[n] = ([.llama3(maxDigits: 1)], false) }
        t["default"] = ([.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples], false)
        return t
    }()

    /// Pre-tokenizer names this engine implements.
    public static var supportedNames: [String] { Array(names.keys) }

    public init(name: String) throws(TokenizerError) {
        guard let entry = Self.names[name] else { throw .unsupportedPreTokenizer(name) }
        passes = entry.passes
        ignoresMerges = entry.ignoresMerges
    }

    /// Splits code points into words: the lengths (in code points) of consecutive pieces.
    func split(_ cps: [Unicode.Scalar]) -> [Int] {
        let classes = cps.map(CodePointClass.classify)
        var pieces = cps.isEmpty ? [] : [cps.count]
        for pass in passes {
            var out: [Int] = []
            out.reserveCapacity(pieces.count * 2)
            var start = 0
            for length in pieces {
                var scanner = Scanner(cps: cps, classes: classes, start: start, end: start + length, out: out)
                scanner.run(pass)
                out = scanner.out
                start += length
            }
            pieces = out
        }
        return pieces
    }
}

// MARK: - Scanners

/// Scans one piece `start..<end`, appending word lengths to `out`.
private struct Scanner {
    let cps: [Unicode.Scalar]
    let classes: [CodePointClass]
    let start: Int
    let end: Int
    var out: [Int]
    private var previousEnd: Int

    init(cps: [Unicode.Scalar], classes: [CodePointClass], start: Int, end: Int, out: [Int]) {
        self.cps = cps
        self.classes = classes
        self.start = start
        self.end = end
        self.out = out
        self.previousEnd = start
    }

    /// The code point at `i`, or nil outside the piece.
    @inline(__always) func cp(_ i: Int) -> UInt32? { i >= start && i < end ? cps[i].value : nil }
    /// The class at `i`; outside the piece nothing matches (and `inside` is false).
    @inline(__always) func cls(_ i: Int) -> CodePointClass { i >= start && i < end ? classes[i] : CodePointClass() }
    @inline(__always) func inside(_ i: Int) -> Bool { i >= start && i < end }

    /// Ends a word at `position` (an empty word is not emitted); returns its length.
    @discardableResult
    mutating func emit(upTo position: Int) -> Int {
        let n = position - previousEnd
        if n > 0 { out.append(n) }
        previousEnd = position
        return n
    }

    mutating func run(_ pass: SplitPass) {
        switch pass {
        case .eachNumber: matchRuns(maxLength: 1) { $0.isNumber }
        case .numberRuns: matchRuns(maxLength: .max) { $0.isNumber }
        case .punctuationRuns:
            matchRunsOfCodePoints(maxLength: .max) { c, v in
                c.isPunctuation || v == 0x24 || v == 0x2B || v == 0x3C || v == 0x3D || v == 0x3E || v == 0x5E || v == 0x7E || v == 0x7C
            }
        case .asciiDigitTriples: asciiTriples()
        case .gpt2: gpt2()
        case .llama3(let maxDigits): llama3(maxDigits: maxDigits)
        }
    }

    /// A regex of one repeated class: matches and the text between them are both words.
    private mutating func matchRuns(maxLength: Int, _ test: (CodePointClass) -> Bool) {
        matchRunsOfCodePoints(maxLength: maxLength) { c, _ in test(c) }
    }

    private mutating func matchRunsOfCodePoints(maxLength: Int, _ test: (CodePointClass, UInt32) -> Bool) {
        var i = start
        while i < end {
            if test(classes[i], cps[i].value) {
                emit(upTo: i)
                var j = i
                while j < end && j - i < maxLength && test(classes[j], cps[j].value) { j += 1 }
                emit(upTo: j)
                i = j
            } else {
                i += 1
            }
        }
        emit(upTo: end)
    }

    private mutating func asciiTriples() {
        func digit(_ i: Int) -> Bool { i < end && cps[i].value >= 0x30 && cps[i].value <= 0x39 }
        var i = start
        while i < end {
            if digit(i) && digit(i + 1) && digit(i + 2) {
                emit(upTo: i)
                emit(upTo: i + 3)
                i += 3
            } else {
                i += 1
            }
        }
        emit(upTo: end)
    }

    /// The contractions `'s 't 're 've 'm 'll 'd` at `pos`; returns the match length or 0.
    private func contraction(at pos: Int, caseInsensitive: Bool) -> Int {
        guard cp(pos) == 0x27, let a = cp(pos + 1) else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 32 : v }
        let n1 = lower(a)
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return 2 }  // s t m d
        guard let b = cp(pos + 2) else { return 0 }
        let n2 = lower(b)
        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    private mutating func gpt2() {
        var pos = start
        while pos < end {
            let c = cps[pos].value
            let here = classes[pos]
            let k = contraction(at: pos, caseInsensitive: false)
            if k > 0 { pos += k; emit(upTo: pos); continue }

            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let isSpace = c == 0x20
            let lead = isSpace ? cls(pos + 1) : here
            let leadInside = isSpace ? inside(pos + 1) : true
            if leadInside && lead.isLetter {
                pos += isSpace ? 1 : 0
                while cls(pos).isLetter { pos += 1 }
                emit(upTo: pos); continue
            }
            if leadInside && lead.isNumber {
                pos += isSpace ? 1 : 0
                while cls(pos).isNumber { pos += 1 }
                emit(upTo: pos); continue
            }
            if leadInside && !(lead.isWhitespace || lead.isLetter || lead.isNumber) {
                pos += isSpace ? 1 : 0
                while inside(pos) && !(cls(pos).isWhitespace || cls(pos).isLetter || cls(pos).isNumber) { pos += 1 }
                emit(upTo: pos); continue
            }

            var spaces = 0
            while cls(pos + spaces).isWhitespace { spaces += 1 }
            // `\s+(?!\S)`: leave the last whitespace to prefix the next word.
            if spaces > 1 && inside(pos + spaces) {
                pos += spaces - 1
                emit(upTo: pos); continue
            }
            if spaces > 0 {
                pos += spaces
                emit(upTo: pos); continue
            }
            pos += 1
            emit(upTo: pos)
        }
    }

    private mutating func llama3(maxDigits: Int) {
        func isCRLF(_ v: UInt32?) -> Bool { v == 0x0D || v == 0x0A }
        var pos = start
        while pos < end {
            let c = cps[pos].value
            let here = classes[pos]
            let k = contraction(at: pos, caseInsensitive: true)
            if k > 0 { pos += k; emit(upTo: pos); continue }

            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !(isCRLF(c) || here.isNumber) && (here.isLetter || cls(pos + 1).isLetter) {
                pos += 1
                while cls(pos).isLetter { pos += 1 }
                emit(upTo: pos); continue
            }
            // `\p{N}{1,maxDigits}`
            if here.isNumber {
                var first = pos
                while cls(pos).isNumber {
                    pos += 1
                    if pos - first >= maxDigits { emit(upTo: pos); first = pos }
                }
                emit(upTo: pos); continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let isSpace = c == 0x20
            let lead = isSpace ? cls(pos + 1) : here
            let leadInside = isSpace ? inside(pos + 1) : true
            if leadInside && !(lead.isWhitespace || lead.isLetter || lead.isNumber) {
                pos += isSpace ? 1 : 0
                while inside(pos) && !(cls(pos).isWhitespace || cls(pos).isLetter || cls(pos).isNumber) { pos += 1 }
                while isCRLF(cp(pos)) { pos += 1 }
                emit(upTo: pos); continue
            }

            var spaces = 0
            var lastNewlineEnd = 0
            while cls(pos + spaces).isWhitespace {
                if isCRLF(cp(pos + spaces)) { lastNewlineEnd = pos + spaces + 1 }
                spaces += 1
            }
            // `\s*[\r\n]+`
            if lastNewlineEnd > 0 { pos = lastNewlineEnd; emit(upTo: pos); continue }
            // `\s+(?!\S)`
            if spaces > 1 && inside(pos + spaces) { pos += spaces - 1; emit(upTo: pos); continue }
            // `\s+`
            if spaces > 0 { pos += spaces; emit(upTo: pos); continue }
            pos += 1
            emit(upTo: pos)
        }
    }
}
