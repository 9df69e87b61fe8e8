// IndexMem — model. Apache-2.0.

import Foundation

// MARK: - Sampling options

/// How the next token is chosen from the logits. `temperature <= 0` is greedy (argmax).
public struct SamplingOptions: Sendable, Codable, Equatable {
    /// Softmax temperature; 0 or less picks the most likely token.
    public var temperature: Float = 0
    /// Keep only the `topK` most likely tokens (0 = all).
    public var topK: Int = 40
    /// Keep the smallest set whose probability reaches `topP` (1 = all).
    public var topP: Float = 0.95
    /// Drop tokens less likely than `minP` x the most likely one (0 = none).
    public var minP: Float = 0.05
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1 = off).
    public var repetitionPenalty: Float = 1
    /// How many recent tokens the repetition penalty looks at.
    public var repetitionWindow: Int = 64
    /// Random seed; the same seed and logits give the same tokens.
    public var seed: UInt64 = 0
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

    public static let greedy = SamplingOptions()
}

// MARK: - Sampler

/// Picks tokens in llama.cpp's default chain order: repetition penalty -> top-k -> top-p ->
/// min-p -> temperature -> draw. Reuses its buffers; one per sequence.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var rng: Xoshiro256
    private var candidates: [(id: Int, logit: Float)] = []

    public init(options: SamplingOptions) {
        self.options = options
        self.rng = Xoshiro256(seed: options.seed)
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
        var r = Float(rng.nextDouble()) * sum
        for i in 0..<keep {
            r -= probs[i]
            if r <= 0 { return candidates[i].id }
        }
        return candidates[keep - 1].id
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast, reproducible across platforms.
public struct Xoshiro256: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9e37_79b9_7f4a_7c15
            var z = x
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
