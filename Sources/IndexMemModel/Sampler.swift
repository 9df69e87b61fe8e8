// IndexMem — model. Apache-2.0.

import Foundation
import IndexMemKernels

// MARK: - Sampling options

/// How the next token is chosen from the logits. `temperature <= 0` is greedy (argmax).
/// The defaults (the initialiser's) are llama.cpp's, except the temperature: 0 here, so that
/// an engine call is reproducible unless it asks for sampling; `llamaCpp` is llama.cpp's own.
public struct SamplingOptions: Sendable, Codable, Equatable {
    /// Softmax temperature; 0 or less picks the most likely token.
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (0 = all).
    public var topK: Int
    /// Keep the smallest set whose probability reaches `topP` (1 = all).
    public var topP: Float
    /// Drop tokens less likely than `minP` x the most likely one (0 = none).
    public var minP: Float
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1 = off).
    public var repetitionPenalty: Float
    /// How many recent tokens the repetition penalty looks at.
    public var repetitionWindow: Int
    /// Random seed; the same seed and logits give the same tokens.
    public var seed: UInt64
    /// Added to a token's logit before anything else (OpenAI's `logit_bias`); -100 or less
    /// bans the token. Optional so encoded options without it still decode.
    public var logitBias: [Int: Float]? = nil

    public init(temperature: Float = 0, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repetitionPenalty: Float = 1, repetitionWindow: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.repetitionWindow = repetitionWindow
        self.seed = seed
    }

    /// The most likely token each time.
    public static let greedy = SamplingOptions()

    /// llama.cpp's defaults (`common_params_sampling`: temperature 0.8, top-k 40, top-p 0.95,
    /// min-p 0.05, no repetition penalty), what `indexmem generate` and the server sample with
    /// unless told otherwise. Its seed is 0; callers draw a random one, as llama.cpp does.
    public static let llamaCpp = SamplingOptions(temperature: 0.8)
}

// MARK: - Sampler

/// Picks tokens in llama.cpp's default chain order: repetition penalty -> top-k -> top-p ->
/// min-p -> temperature -> draw. Reuses its buffers; one per sequence.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    /// The project's one seeded generator: a seed gives the same tokens on every platform.
    private var rng: SplitMix64
    private var candidates: [(id: Int, logit: Float)] = []

    public init(options: SamplingOptions) {
        self.options = options
        self.rng = SplitMix64(seed: options.seed)
    }

    /// Chooses the next token. `recent` are the latest tokens of the sequence (for the penalty).
    public mutating func sample(logits: UnsafeMutableBufferPointer<Float>, recent: ArraySlice<Int>) -> Int {
        let o = options
        if let bias = o.logitBias {
            for (id, b) in bias where id >= 0 && id < logits.count { logits[id] = b <= -100 ? -.infinity : logits[id] + b }
        }
        if o.repetitionPenalty != 1 {
            var seen = Set<Int>()
            for t in recent.suffix(o.repetitionWindow) where seen.insert(t).inserted && t >= 0 && t < logits.count {
                logits[t] = logits[t] > 0 ? logits[t] / o.repetitionPenalty : logits[t] * o.repetitionPenalty
            }
        }
        if o.temperature <= 0 {
            var best = 0
            var bv = -Float.infinity
            for i in 0..<logits.count where logits[i] > bv { bv = logits[i]; best = i }
            return best
        }
        candidates.removeAll(keepingCapacity: true)
        let k = o.topK > 0 ? min(o.topK, logits.count) : logits.count
        if k < logits.count {
            // Partial selection: keep a small sorted list of the k best.
            for i in 0..<logits.count {
                let l = logits[i]
                if candidates.count < k {
                    candidates.append((i, l))
                    if candidates.count == k { candidates.sort { $0.logit > $1.logit } }
                } else if l > candidates[k - 1].logit {
                    var j = k - 1
                    while j > 0 && candidates[j - 1].logit < l { candidates[j] = candidates[j - 1]; j -= 1 }
                    candidates[j] = (i, l)
                }
            }
            if candidates.count < k { candidates.sort { $0.logit > $1.logit } }
        } else {
            for i in 0..<logits.count { candidates.append((i, logits[i])) }
            candidates.sort { $0.logit > $1.logit }
        }
        // Probabilities at temperature 1 decide the top-p and min-p cut-offs (llama.cpp order).
        let maxLogit = candidates[0].logit
        var probs = candidates.map { expf($0.logit - maxLogit) }
        let total = probs.reduce(0, +)
        var keep = candidates.count
        if o.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<keep {
                cumulative += probs[i] / total
                if cumulative >= o.topP { keep = i + 1; break }
            }
        }
        if o.minP > 0 {
            var i = 1
            while i < keep && probs[i] >= o.minP { i += 1 }
            keep = i
        }
        keep = max(1, keep)
        for i in 0..<keep { probs[i] = expf((candidates[i].logit - maxLogit) / o.temperature) }
        let sum = probs[0..<keep].reduce(0, +)
        var r = Float(rng.unitDouble()) * sum
        for i in 0..<keep {
            r -= probs[i]
            if r <= 0 { return candidates[i].id }
        }
        return candidates[keep - 1].id
    }
}
