// IndexMem — GGUF reader tests. Apache-2.0.

import Foundation
import IndexMemGGUF
import IndexMemTestSupport
import Testing

/// Valid files to mutate, with the writer's layout (where the counts, lengths and offsets are).
private func fuzzSeeds() -> [(name: String, bytes: [UInt8], layout: GGUFWriter.Layout)] {
    var seeds: [(String, [UInt8], GGUFWriter.Layout)] = []

    // 1. Every value type and every tensor type (v3, alignment 32).
    var w = GGUFWriter(version: 3, alignment: 32)
    for (k, v) in allTypesMetadata where k != "str.long" { w.add(key: k, value: v) }
    for t in allTypesTensors(seed: 1) { w.addTensor(name: t.name, dimensions: t.dims, type: t.type, data: t.data) }
    let a = w.build()
    seeds.append(("all-types", a.bytes, a.layout))

    // 2. The small file, version 2, alignment 8.
    let b = smallWriter(version: 2, alignment: 8).build()
    seeds.append(("small-v2", b.bytes, b.layout))

    // 3. A tokenizer-like file: long string arrays, scores, token types, quantized tensors.
    var rng = SplitMix64(seed: 99)
    w = GGUFWriter(version: 3, alignment: 64)
    w.add(key: "general.architecture", value: .string("llama"))
    w.add(key: "llama.context_length", value: .uint32(8192))
    w.add(key: "llama.attention.layer_norm_rms_epsilon", value: .float32(1e-5))
    w.add(key: "tokenizer.ggml.model", value: .string("gpt2"))
    let tokens = (0..<150).map { i in GGUFValue.string(i % 7 == 0 ? "Ġ\(i)é" : "t\(i)") }
    w.add(key: "tokenizer.ggml.tokens", value: .array(tokens))
    w.add(key: "tokenizer.ggml.scores", value: .array((0..<150).map { _ in .float32(rng.float(-10, 0)) }))
    w.add(key: "tokenizer.ggml.token_type", value: .array((0..<150).map { .int32(Int32($0 % 4)) }))
    w.add(key: "tokenizer.ggml.merges", value: .array((0..<40).map { .string("t\($0) t\($0 + 1)") }))
    w.add(key: "tokenizer.ggml.add_bos_token", value: .bool(true))
    w.addTensor(name: "token_embd.weight", dimensions: [256, 2], type: .q4_K, data: rng.bytes(2 * 144))
    w.addTensor(name: "output_norm.weight", dimensions: [64], floats: rng.floats(64))
    w.addTensor(name: "blk.0.attn_q.weight", dimensions: [64, 4], type: .q8_0, data: rng.bytes(8 * 34))
    let c = w.build()
    seeds.append(("tokenizer-like", c.bytes, c.layout))
    return seeds
}

/// Values that break naive readers: zero, one, powers of two, sign bits, all-ones, the size.
private func extremes(fileSize: Int) -> [UInt64] {
    let n = UInt64(fileSize)
    return [0, 1, 2, 3, 4, 5, 8, 31, 32, 33, 64, 255, 256, 65535, 1 << 20, 1 << 31, (1 << 31) - 1, (1 << 32) - 1, 1 << 32,
            1 << 40, (1 << 40) + 1, 1 << 62, 1 << 63, (1 << 63) - 1, UInt64.max, UInt64.max - 1, n, n - 1, n + 1, n / 2, n / 13, n / 24]
}

/// The name of an error's case, for the summary.
private func caseName(_ e: GGUFError) -> String {
    Mirror(reflecting: e).children.first?.label ?? "\(e)"
}

/// Tallies fuzz outcomes and collects invariant violations.
private struct FuzzTally {
    var parsed = 0
    var errors: [String: Int] = [:]
    var violations: [String] = []
    var emptyDescriptions = 0

    mutating func run(_ bytes: [UInt8], _ what: @autoclosure () -> String) {
        do {
            let file = try parse(bytes)
            parsed += 1
            if let v = invariantViolation(file) {
                if violations.count < 20 { violations.append("\(what()): \(v)") }
            } else {
                _ = touchAllTensorBytes(file)
            }
        } catch {
            errors[caseName(error), default: 0] += 1
            if error.description.isEmpty { emptyDescriptions += 1 }
        }
    }

    var total: Int { parsed + errors.values.reduce(0, +) }
    var summary: String {
        "\(total) parses: \(parsed) ok, errors " + errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

@Suite("GGUF fuzzing")
struct GGUFFuzzTests {
    @Test("every header field set to every extreme value", .timeLimit(.minutes(1)))
    func fieldSweep() {
        var tally = FuzzTally()
        for seed in fuzzSeeds() {
            for (i, field) in seed.layout.fields.enumerated() {
                var values = extremes(fileSize: seed.bytes.count)
                // Also nudge the current value by a little, for off-by-one errors.
                var current: UInt64 = 0
                for j in 0..<field.width { current |= UInt64(seed.bytes[field.offset + j]) << (8 * UInt64(j)) }
                for d in [-2, -1, 1, 2, 32] { values.append(current &+ UInt64(bitPattern: Int64(d))) }
                for v in values {
                    var b = seed.bytes
                    GGUFWriter.patch(&b, at: field.offset, width: field.width, value: v)
                    tally.run(b, "\(seed.name) field \(i) \(field.role) at \(field.offset) = \(v)")
                }
            }
        }
        print("GGUF field sweep: \(tally.summary)")
        #expect(tally.violations.isEmpty, "\(tally.violations.joined(separator: "\n"))")
        #expect(tally.emptyDescriptions == 0)
        #expect(tally.total > 1000)
    }

    @Test("every byte of a small file set to interesting values", .timeLimit(.minutes(1)))
    func byteSweep() {
        var tally = FuzzTally()
        let seed = fuzzSeeds()[1]
        for i in 0..<seed.bytes.count {
            let old = seed.bytes[i]
            for v in Set([0, 1, 0x7F, 0x80, 0xFF, old ^ 1, old &+ 1, old &- 1, old ^ 0x80]) where v != old {
                var b = seed.bytes
                b[i] = v
                tally.run(b, "byte \(i) = \(v)")
            }
        }
        print("GGUF byte sweep: \(tally.summary)")
        #expect(tally.violations.isEmpty, "\(tally.violations.joined(separator: "\n"))")
        #expect(tally.emptyDescriptions == 0)
    }

    @Test("random mutations either parse into a consistent file or throw GGUFError", .timeLimit(.minutes(1)))
    func randomMutations() {
        let iterationsPerSeed = 20_000
        let clock = ContinuousClock()
        let start = clock.now
        var tally = FuzzTally()
        for (s, seed) in fuzzSeeds().enumerated() {
            var rng = SplitMix64(seed: 0xF022 &+ UInt64(s))
            let values = extremes(fileSize: seed.bytes.count)
            for iteration in 0..<iterationsPerSeed {
                var b = seed.bytes
                let mutations = 1 + rng.below(3)
                for _ in 0..<mutations {
                    mutate(&b, rng: &rng, layout: seed.layout, extremes: values)
                }
                tally.run(b, "\(seed.name) iteration \(iteration)")
            }
        }
        let elapsed = clock.now - start
        print("GGUF random mutations: \(tally.summary) in \(elapsed)")
        #expect(tally.violations.isEmpty, "\(tally.violations.joined(separator: "\n"))")
        #expect(tally.emptyDescriptions == 0)
        #expect(tally.total == 3 * iterationsPerSeed)
        // Mutations should not all be rejected by the first check (the fuzzer reaches deep).
        #expect(tally.parsed > 0)
        #expect(tally.errors.count >= 5)
    }
}

/// One random mutation. Field overwrites use the seed's layout; after an insertion or deletion
/// the fields shift, which is fine (it is then a random overwrite).
private func mutate(_ b: inout [UInt8], rng: inout SplitMix64, layout: GGUFWriter.Layout, extremes: [UInt64]) {
    switch rng.below(10) {
    case 0:  // flip one bit
        guard !b.isEmpty else { return }
        b[rng.below(b.count)] ^= UInt8(1) << UInt8(rng.below(8))
    case 1:  // set a random byte
        guard !b.isEmpty else { return }
        b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
    case 2, 3:  // a header field to an extreme value
        let f = layout.fields[rng.below(layout.fields.count)]
        guard f.offset + f.width <= b.count else { return }
        GGUFWriter.patch(&b, at: f.offset, width: f.width, value: extremes[rng.below(extremes.count)])
    case 4:  // a header field to a random value, or nudged
        let f = layout.fields[rng.below(layout.fields.count)]
        guard f.offset + f.width <= b.count else { return }
        var v: UInt64 = 0
        for j in 0..<f.width { v |= UInt64(b[f.offset + j]) << (8 * UInt64(j)) }
        let nudged = rng.below(2) == 0 ? v &+ UInt64(bitPattern: Int64(rng.below(9) - 4)) : rng.next() >> UInt64(rng.below(64))
        GGUFWriter.patch(&b, at: f.offset, width: f.width, value: nudged)
    case 5:  // 4 or 8 bytes anywhere to an extreme value
        let width = rng.below(2) == 0 ? 4 : 8
        guard b.count >= width else { return }
        GGUFWriter.patch(&b, at: rng.below(b.count - width + 1), width: width, value: extremes[rng.below(extremes.count)])
    case 6:  // truncate
        b.removeLast(rng.below(b.count + 1))
    case 7:  // insert random bytes
        let at = rng.below(b.count + 1)
        b.insert(contentsOf: rng.bytes(1 + rng.below(16)), at: at)
    case 8:  // delete a range
        guard !b.isEmpty else { return }
        let at = rng.below(b.count)
        b.removeSubrange(at..<min(b.count, at + 1 + rng.below(16)))
    default:  // copy a range over another place (splices structure into structure)
        guard b.count > 2 else { return }
        let n = 1 + rng.below(min(32, b.count / 2))
        let from = rng.below(b.count - n + 1)
        let to = rng.below(b.count - n + 1)
        let chunk = Array(b[from..<(from + n)])
        b.replaceSubrange(to..<(to + n), with: chunk)
    }
}
