// IndexMem — public facade. Apache-2.0.
//
// The policy list as people read it, made from the policies' own declarations: the README's
// table (`indexmem policies --markdown`; a test fails when the README drifts from it) and
// the command line's `indexmem policies`.

import IndexMemCache

// MARK: - Policy table

public enum PolicyTable {
    /// The README's policy table, one row per built-in policy.
    public static func markdown(_ policies: [PolicyDefinition] = PolicyRegistry.builtIn) -> String {
        var lines = ["| policy | keeps | reads attention |", "| --- | --- | --- |"]
        for p in policies { lines.append("| `\(p.synopsis)` | \(p.keeps) | \(p.readsAttention) |") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Each policy with its options, defaults and accepted values, for a terminal.
    public static func text(_ policies: [PolicyDefinition] = PolicyRegistry.all) -> String {
        var out = ""
        for p in policies {
            out += "\(p.synopsis)\n    \(p.summary)\n"
            for o in p.options { out += "    \(o.name): \(o.help); \(accepted(o.value)), default \(o.defaultText)\n" }
        }
        return out
    }

    private static func accepted(_ value: PolicyOption.Value) -> String {
        switch value {
        case .integer(_, let r): return "an integer in \(r.lowerBound)...\(r.upperBound)"
        case .number(_, let r): return "a number in \(r.lowerBound)...\(r.upperBound)"
        case .choice(_, let words): return words.joined(separator: " or ")
        case .policy: return "a scoring policy's name"
        }
    }
}
