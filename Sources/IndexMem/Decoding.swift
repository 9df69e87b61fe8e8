// IndexMem — public facade. Apache-2.0.
//
// The decode loop's state, kept by its caller so that `Session.generate`, the server's
// scheduler (one step per request per round) and anything else step a session the same way.
// A sampled token is fed by the next step, so the last token of a generation is never fed:
// its logits would never be read.

import IndexMemModel

// MARK: - Decoding

/// One generation after its prompt: what `Session.decodeStep` reads and advances.
public struct Decoding: Sendable {
    public var sampler: Sampler
    /// Most tokens to generate.
    public let maxTokens: Int
    /// Tokens that end the generation (not counted, not fed).
    public let stopTokens: Set<Int>
    /// Tokens generated so far.
    public internal(set) var generated: [Int] = []
    /// Why the generation ended, once it has.
    public internal(set) var finishReason: GenerationResult.FinishReason?
    /// Forward passes run for generated tokens (the decode tokens of `GenerationTimings`).
    public internal(set) var steps = 0
    /// The token sampled last, fed by the next step.
    var unfed: Int?

    init(options: GenerationOptions, stopTokens: Set<Int>) {
        sampler = Sampler(options: options.sampling)
        maxTokens = options.maxTokens
        self.stopTokens = options.stopAtEndOfTurn ? stopTokens : []
    }

    public var isFinished: Bool { finishReason != nil }

    /// Ends the generation at the caller's wish (a stop string, a client gone).
    public mutating func stop() {
        finishReason = .stop
        unfed = nil
    }
}
