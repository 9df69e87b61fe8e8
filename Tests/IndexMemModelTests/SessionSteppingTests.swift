// IndexMem — model tests. Apache-2.0.
//
// A session owns its stepping: `generate` is `prefill`, `finishPrompt` and `decodeStep` in a
// loop, and the context limit is one rule (every generated token has a position).

import Foundation
import IndexMem
import IndexMemTestSupport
import Testing

@Suite("Session stepping")
struct SessionSteppingTests {
    @Test("prefill in chunks, finishPrompt and decodeStep give generate's tokens", arguments: CacheConfiguration.Mode.allCases)
    func stepsEqualGenerate(mode: CacheConfiguration.Mode) throws {
        let engine = try SharedEngine.get()
        let prompt = try SharedEngine.licenseTokens(300)
        let plan = try CacheConfiguration(policy: "h2o", budget: 96, mode: mode, window: 32, chunk: 64).resolve()
        let options = GenerationOptions(maxTokens: 12, stopAtEndOfTurn: false)
        let generated = try engine.makeSession(cache: plan).generate(prompt: prompt, options: options)

        let session = try engine.makeSession(cache: plan)
        for start in stride(from: 0, to: prompt.count, by: plan.chunk) {
            try session.prefill(Array(prompt[start..<min(start + plan.chunk, prompt.count)]))
        }
        session.finishPrompt()
        #expect(session.compressed == (mode == .prefillThenCompress))
        var decoding = session.startDecoding(options)
        var tokens: [Int] = []
        while let next = try session.decodeStep(&decoding) { tokens.append(next) }
        #expect(tokens == generated.generatedTokens && decoding.finishReason == .length)
        #expect(decoding.steps == generated.timings.decodeTokens && decoding.steps == 11, "the last token is not fed")
        #expect(session.tokens.count == prompt.count + 11)
    }

    @Test("at the end of the context: every generated token has a position")
    func contextEnd() throws {
        let fixture = try TinyModelFixture.load("mistral")
        let path = try TinyModels.write("mistral", variant: "-ctx40", override: ["llama.context_length": .uint32(40)])
        let engine = try Engine(path: path, threads: 2)
        let g = fixture.greedy[1]
        #expect(g.prompt_ids.count == 30)
        let session = try engine.makeSession()
        let result = try session.generate(prompt: g.prompt_ids, options: GenerationOptions(maxTokens: 16, stopAtEndOfTurn: false))
        #expect(result.generatedTokens == Array(g.generated_ids.prefix(10)))
        #expect(result.finishReason == .length && session.tokens.count == 39)
        // A full context leaves nothing to generate, and a longer prompt is refused.
        let full = try engine.makeSession()
        #expect(try full.generate(prompt: g.prompt_ids + Array(g.generated_ids.prefix(10)), options: GenerationOptions(maxTokens: 4)).generatedTokens.isEmpty)
        #expect(throws: EngineError.self) { try engine.makeSession().prefill(g.prompt_ids + g.generated_ids) }
    }
}
