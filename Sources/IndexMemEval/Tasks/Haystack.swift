// IndexMem — evaluation. Apache-2.0.
//
// Haystacks the needles hide in. The noise haystack repeats a few plain sentences (as RULER's
// "noise" does); the prose haystack is natural English from Debian's `fortunes` package
// (quotations, anecdotes and verse), fetched by `scripts/setup.sh haystack` into
// data/haystack/, never committed. Both are drawn from the sample's seed: the prose haystack
// starts at a seeded passage and takes passages in a seeded order, so two seeds give two
// different texts, not just two needle positions.

import Foundation
import IndexMemKernels

// MARK: - Kinds

public enum HaystackKind: String, Sendable, Codable, CaseIterable {
    case noise
    case prose
}

public enum EvalError: Error, CustomStringConvertible, Sendable {
    case haystackMissing(String)
    case unknownTask(String, available: [String])
    case cannotFitLength(task: String, length: Int, reason: String)
    case malformedDataset(path: String, errors: [String])
    case invalidSweep(String)
    case io(String)

    public var description: String {
        switch self {
        case .haystackMissing(let p):
            return "natural-prose haystack not found at \(p): run `scripts/setup.sh haystack` (downloads Debian's fortunes package)"
        case .unknownTask(let t, let a): return "unknown task '\(t)'; available: \(a.joined(separator: ", "))"
        case .cannotFitLength(let t, let n, let r): return "task '\(t)' cannot be built at \(n) tokens: \(r)"
        case .malformedDataset(let p, let e): return "\(p): \(e.count) malformed line(s): \(e.prefix(5).joined(separator: "; "))"
        case .invalidSweep(let m): return "invalid sweep: \(m)"
        case .io(let m): return m
        }
    }
}

// MARK: - Sources of text

/// Units of filler text, taken in a seeded order.
public struct Haystack: Sendable {
    public let kind: HaystackKind
    let passages: [String]

    static let noiseSentences = [
        "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again.",
    ]

    /// Where the prose haystack lives (`$INDEXMEM_HAYSTACK_DIR` or data/haystack under the repository).
    public static var proseDirectory: String {
        if let d = ProcessInfo.processInfo.environment["INDEXMEM_HAYSTACK_DIR"], !d.isEmpty { return d }
        return EvalPaths.repositoryRoot + "/data/haystack"
    }

    /// The noise haystack, or the prose haystack loaded from `directory`.
    public static func load(_ kind: HaystackKind, directory: String = proseDirectory) throws -> Haystack {
        switch kind {
        case .noise:
            return Haystack(kind: .noise, passages: noiseSentences)
        case .prose:
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { !$0.hasPrefix(".") }.sorted() ?? []
            var passages: [String] = []
            for f in files {
                guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else { continue }
                passages += splitFortunes(text)
            }
            guard passages.count >= 100 else { throw EvalError.haystackMissing(directory) }
            return Haystack(kind: .prose, passages: passages)
        }
    }

    /// Fortune files separate entries with lines holding only `%`; whitespace is collapsed
    /// so each entry reads as one paragraph.
    static func splitFortunes(_ text: String) -> [String] {
        text.components(separatedBy: "\n%\n").compactMap { entry in
            let words = entry.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
            guard words.count >= 4 else { return nil }
            return words.joined(separator: " ")
        }
    }

    /// `count` sentences of filler for a seed: noise sentences cycle; prose passages are taken
    /// whole, in a seeded order, and cut into sentences (so lengths can be matched finely).
    public func units(_ count: Int, seed: UInt64) -> [String] {
        switch kind {
        case .noise:
            return (0..<count).map { passages[$0 % passages.count] }
        case .prose:
            var rng = SeededGenerator(seed: seed ^ 0x5EED_0F_4A57)
            var order = Array(passages.indices)
            order.shuffle(using: &rng)
            var out: [String] = []
            out.reserveCapacity(count)
            var i = 0
            while out.count < count {
                for sentence in Self.sentences(passages[order[i % order.count]]) where out.count < count { out.append(sentence) }
                i += 1
            }
            return out
        }
    }

    /// Splits after `.`, `?` or `!` followed by a space.
    static func sentences(_ passage: String) -> [String] {
        var out: [String] = []
        var current = ""
        var previous: Character = " "
        for ch in passage {
            if ch == " " && (previous == "." || previous == "?" || previous == "!") && !current.isEmpty {
                out.append(current)
                current = ""
            } else {
                current.append(ch)
            }
            previous = ch
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

/// Paths the evaluation needs.
public enum EvalPaths {
    /// The repository root: `$INDEXMEM_ROOT`, or found from the working directory upwards.
    public static let repositoryRoot: String = {
        if let r = ProcessInfo.processInfo.environment["INDEXMEM_ROOT"], !r.isEmpty { return r }
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
            dir.deleteLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }()
}

// MARK: - Seeded randomness

/// The evaluation's generator: the same sequence on every platform, so samples are reproducible.
public typealias SeededGenerator = SplitMix64
