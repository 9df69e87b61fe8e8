// IndexMem — cache policies. Apache-2.0.
//
// PyramidKV (Cai et al. 2024, arXiv:2406.02069) is a budget schedule, not a scorer: budgets
// fall linearly from the first budgeted layer to the last, averaging the budget, over any
// scoring policy (`BudgetSchedule.pyramid` states the schedule and how it differs from the
// paper's code and from kvpress). The scorer runs with its own defaults.

// MARK: - pyramid

public enum PyramidPolicy {
    /// The paper's beta: the last layer keeps `(budget - window) / beta` besides the window.
    public static let defaultBeta = 20.0
    /// SnapKV, the scorer of the paper.
    public static let defaultScorer = "snapkv"

    public static let definition = PolicyDefinition(
        name: "pyramid", summary: "PyramidKV layer budgets over a scorer",
        keeps: "PyramidKV's layer-wise budgets (averaging `--budget`, the paper's schedule: last layer `(budget - window) / beta` + window) over any scorer; kvpress's PyramidKVPress counts the window inside and falls back to uniform SnapKV below budget 1280 at beta 20",
        readsAttention: "as the scorer",
        options: [
            PolicyOption("scorer", .policy(default: defaultScorer), help: "the scoring policy under the schedule"),
            PolicyOption("beta", .number(default: defaultBeta, range: 1...1000), help: "first-to-last budget ratio"),
        ]
    ) { arguments throws(PolicyError) in
        let beta = try arguments.double("beta")
        let scorerName = arguments.policyName("scorer")
        // Only a scorer fits under the schedule: not `full`, not another schedule.
        let scorer = scorerName == "pyramid" || scorerName == "full" ? nil : try PolicyRegistry.resolve(PolicySpec(name: scorerName))
        guard let scorer, let policy = scorer.policy, scorer.pyramidBeta == nil else {
            throw .invalidValue(policy: "pyramid", option: "scorer", value: scorerName, expected: "a scoring policy")
        }
        return ResolvedPolicy(policy: policy, pyramidBeta: beta, spec: arguments.spec.description)
    }
}
