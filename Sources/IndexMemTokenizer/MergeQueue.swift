// IndexMem — tokenizer. Apache-2.0.

/// A candidate merge of two adjacent symbols; `precedes` orders the queue.
protocol MergeCandidate {
    /// Whether this merge is applied before `other`.
    func precedes(_ other: Self) -> Bool
}

/// A binary heap of candidate merges, the one applied first on top: both tokenizers merge
/// the best adjacent pair, leftmost among equals, until none is left.
struct MergeQueue<Candidate: MergeCandidate> {
    private var items: [Candidate] = []

    mutating func push(_ c: Candidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard items[i].precedes(items[p]) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Candidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].precedes(items[m]) { m = l }
                if r < items.count && items[r].precedes(items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// A tokenizer that decodes through a table of each token's bytes.
protocol PieceTableTokenizer: Tokenizer {
    /// Bytes each token stands for when decoded, by id.
    var pieces: [[UInt8]] { get }
}

extension PieceTableTokenizer {
    public func pieceBytes(_ id: Int, special: Bool) -> [UInt8] {
        guard id >= 0 && id < pieces.count else { return [] }
        switch vocabulary.tokenTypes[id] {
        case .control, .unknown: return special ? pieces[id] : []
        default: return pieces[id]
        }
    }
}
