// IndexMem — cache policies. Apache-2.0.
//
// What a policy says about itself, declared once in its own file: its name, its options with
// their defaults and ranges, a help line, and the two README columns. The registry resolves
// specs against these declarations, and the command line, the eval command and the README's
// policy table are made from them, so adding a policy touches its file and the registry's list.

// MARK: - Options

/// One option of a policy (`window` of `snapkv:window=64`).
public struct PolicyOption: Sendable {
    /// The option's type, its default and what values it accepts.
    public enum Value: Sendable, Equatable {
        case integer(default: Int, range: ClosedRange<Int>)
        case number(default: Double, range: ClosedRange<Double>)
        /// One of a few words (matched case-insensitively).
        case choice(default: String, among: [String])
        /// The name of another policy (pyramid's scorer).
        case policy(default: String)
    }

    public let name: String
    public let value: Value
    /// What the option does, in a few words.
    public let help: String

    public init(_ name: String, _ value: Value, help: String) {
        self.name = name
        self.value = value
        self.help = help
    }

    /// The default as it would be written in a spec.
    public var defaultText: String {
        switch value {
        case .integer(let d, _): return String(d)
        case .number(let d, _): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case .choice(let d, _), .policy(let d): return d
        }
    }
}

// MARK: - Definition

/// A policy as the registry knows it.
public struct PolicyDefinition: Sendable {
    /// Makes the policy from a spec whose option names were checked against `options`.
    public typealias Resolve = @Sendable (PolicyArguments) throws(PolicyError) -> ResolvedPolicy

    public let name: String
    /// One line for `--help` and `indexmem policies`.
    public let summary: String
    /// The README table's "keeps" column: what the policy keeps and how it follows its paper.
    public let keeps: String
    /// The README table's "reads attention" column (`no` when it reads none).
    public let readsAttention: String
    /// Options in the order help and errors list them.
    public let options: [PolicyOption]
    public let resolve: Resolve

    public init(name: String, summary: String, keeps: String, readsAttention: String = "no", options: [PolicyOption] = [],
                resolve: @escaping Resolve) {
        self.name = name
        self.summary = summary
        self.keeps = keeps
        self.readsAttention = readsAttention
        self.options = options
        self.resolve = resolve
    }

    /// The name with every option at its default: `snapkv[:window=64,kernel=5]`.
    public var synopsis: String {
        options.isEmpty ? name : name + "[:" + options.map { "\($0.name)=\($0.defaultText)" }.joined(separator: ",") + "]"
    }
}

// MARK: - Arguments

/// A spec's option values read against the policy's declared options: an absent option has
/// its declared default, a present one is checked against its declared range.
public struct PolicyArguments: Sendable {
    public let spec: PolicySpec
    public let options: [PolicyOption]

    public init(spec: PolicySpec, options: [PolicyOption]) {
        self.spec = spec
        self.options = options
    }

    private func declared(_ name: String) -> PolicyOption.Value {
        guard let option = options.first(where: { $0.name == name }) else {
            preconditionFailure("policy '\(spec.name)' reads option '\(name)', which it does not declare")
        }
        return option.value
    }

    public func int(_ name: String) throws(PolicyError) -> Int {
        guard case .integer(let value, let range) = declared(name) else { preconditionFailure("option '\(name)' is not an integer") }
        return try given(name, default: value, in: range, kind: "an integer")
    }

    public func double(_ name: String) throws(PolicyError) -> Double {
        guard case .number(let value, let range) = declared(name) else { preconditionFailure("option '\(name)' is not a number") }
        return try given(name, default: value, in: range, kind: "a number")
    }

    /// The option's value as given, checked against its range, or its default.
    private func given<T: LosslessStringConvertible & Comparable>(_ name: String, default value: T, in range: ClosedRange<T>,
                                                                  kind: String) throws(PolicyError) -> T {
        guard let text = spec.options[name] else { return value }
        guard let v = T(text), range.contains(v) else {
            throw .invalidValue(policy: spec.name, option: name, value: text, expected: "\(kind) in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// One of the declared words, lowercased.
    public func choice(_ name: String) throws(PolicyError) -> String {
        guard case .choice(let value, let words) = declared(name) else { preconditionFailure("option '\(name)' is not a choice") }
        guard let text = spec.options[name] else { return value }
        guard words.contains(text.lowercased()) else {
            throw .invalidValue(policy: spec.name, option: name, value: text, expected: words.joined(separator: " or "))
        }
        return text.lowercased()
    }

    /// A policy name, as given (the registry resolves it).
    public func policyName(_ name: String) -> String {
        guard case .policy(let value) = declared(name) else { preconditionFailure("option '\(name)' is not a policy name") }
        return spec.options[name] ?? value
    }
}
