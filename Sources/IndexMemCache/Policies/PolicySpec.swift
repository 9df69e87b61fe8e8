// IndexMem — cache policies. Apache-2.0.
//
// The text form of a policy, `name[:option=value,...]`, as the CLI (`--policy
// snapkv:window=64`), the server (`kv_policy`) and sweep files give it. It is parsed once, at
// the edge, by `PolicyRegistry.resolve`; everything after holds the typed `ResolvedPolicy`.

import Foundation

// MARK: - Errors

/// A policy spec that cannot be resolved, with a message a user can act on.
public enum PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptySpec
    case unknownPolicy(String, available: [String])
    case unknownOption(policy: String, option: String, allowed: [String])
    case invalidValue(policy: String, option: String, value: String, expected: String)
    case malformedOption(policy: String, text: String)
    case unavailable(policy: String, reason: String)
    case repeatedOption(policy: String, option: String)

    public var description: String {
        switch self {
        case .emptySpec: return "empty policy spec; expected NAME[:option=value,...]"
        case .unknownPolicy(let n, let a): return "unknown policy '\(n)'; available: \(a.joined(separator: ", "))"
        case .unknownOption(let p, let o, let a):
            return "policy '\(p)' has no option '\(o)'" + (a.isEmpty ? " (it takes none)" : "; options: \(a.joined(separator: ", "))")
        case .invalidValue(let p, let o, let v, let e): return "policy '\(p)': option \(o)=\(v) must be \(e)"
        case .malformedOption(let p, let t): return "policy '\(p)': '\(t)' is not option=value"
        case .unavailable(let p, let r): return "policy '\(p)' cannot be used: \(r)"
        case .repeatedOption(let p, let o): return "policy '\(p)': option '\(o)' is given twice; give it once"
        }
    }
}

// MARK: - Spec

/// `name[:option=value,...]`, split but not yet checked against a policy's options.
public struct PolicySpec: Sendable, Equatable, Codable, CustomStringConvertible {
    public var name: String
    public var options: [String: String]

    public init(name: String, options: [String: String] = [:]) {
        self.name = name
        self.options = options
    }

    public init(parsing text: String) throws(PolicyError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .emptySpec }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        name = parts[0].lowercased()
        guard !name.isEmpty else { throw .emptySpec }
        options = [:]
        if parts.count == 2 {
            for item in parts[1].split(separator: ",") where !item.isEmpty {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else { throw .malformedOption(policy: name, text: String(item)) }
                let key = String(kv[0]).trimmingCharacters(in: .whitespaces)
                // `window=1,window=2` has no single meaning: refuse it rather than pick one.
                guard options.updateValue(String(kv[1]).trimmingCharacters(in: .whitespaces), forKey: key) == nil else {
                    throw .repeatedOption(policy: name, option: key)
                }
            }
        }
    }

    public var description: String {
        options.isEmpty ? name : name + ":" + options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Checks that only `allowed` options are present.
    public func allowOnly(_ allowed: [String]) throws(PolicyError) {
        for key in options.keys where !allowed.contains(key) {
            throw .unknownOption(policy: name, option: key, allowed: allowed)
        }
    }
}
