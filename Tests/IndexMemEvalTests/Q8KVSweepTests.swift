// IndexMem — evaluation tests. Apache-2.0.
//
// A sweep's `kv_type` (one name or a list; `eval run --kv-type`): every setting runs with
// each entry type, each its own work item and result key; f16 lines stay as they were.

import Foundation
import IndexMem
import IndexMemEval
import Testing

@Suite("Q8KV in a sweep")
struct Q8KVSweepTests {
    @Test("kv_type takes one name or a list; each type is its own setting and key; unknown types are refused")
    func parsed() throws {
        let one = try JSONDecoder().decode(SweepSpec.self, from: Data(#"{"policies": ["full", "h2o"], "budgets": [128], "kv_type": "q8_0"}"#.utf8))
        #expect(one.kvTypes == ["q8_0"])
        #expect(try one.cacheSettings().allSatisfy { $0.kvType == .q8_0 })
        let both = try JSONDecoder().decode(SweepSpec.self, from: Data(#"{"policies": ["full", "h2o"], "budgets": [128], "kv_type": ["f16", "q8_0"]}"#.utf8))
        let items = try both.workItems()
        #expect(items.count == 2 * 2)
        #expect(Set(items.map(\.key)).count == items.count, "a q8_0 item does not resume from an f16 line")
        #expect(items.filter { $0.key.kvType == "q8_0" }.count == 2 && items.filter { $0.key.kvType == nil }.count == 2)
        var bad = SweepSpec()
        bad.kvTypes = ["q4"]
        #expect(throws: EvalError.self) { try bad.cacheSettings() }
    }

    @Test("a result line carries kv_type only when it is not f16, and reports name the type")
    func resultLine() throws {
        var line = EvalResult(id: "s", task: "t", length: 1, policy: "h2o", budget: 128, ratio: nil, mode: "bounded", score: 1, output: "",
                              answers: [], kvBytesPeak: 1, kvBytesFullCache: 2, modelSha256: "sha", seconds: 0, depth: nil, sample: 0, seed: 0,
                              sinks: 4, window: 64, chunk: 256, evictions: 0, generatedTokens: 0, perplexity: nil, dataset: nil)
        #expect(!String(decoding: try JSONEncoder().encode(line), as: UTF8.self).contains("kv_type"))
        line.kvType = "q8_0"
        let decoded = try JSONDecoder().decode(EvalResult.self, from: try JSONEncoder().encode(line))
        #expect(decoded.kvType == "q8_0" && decoded.key.kvType == "q8_0")
        #expect(decoded.policyLabel == "h2o+q8_0")
    }

    @Test("a report compares each row with the full cache of its own KV type")
    func report() throws {
        func line(_ policy: String, _ budget: Int?, _ kvType: String?, _ ppl: Double) -> EvalResult {
            var r = EvalResult(id: "s", task: "perplexity", length: 512, policy: policy, budget: budget, ratio: nil, mode: "bounded",
                               score: 1 / ppl, output: "", answers: [], kvBytesPeak: 1, kvBytesFullCache: 2, modelSha256: "sha", seconds: 0,
                               depth: nil, sample: 0, seed: 0, sinks: 4, window: 64, chunk: 256, evictions: 0, generatedTokens: 0,
                               perplexity: ppl, dataset: nil)
            r.kvType = kvType
            return r
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("q8kv-report-\(ProcessInfo.processInfo.processIdentifier)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Report.write(results: [line("full", nil, nil, 51.12), line("window", 128, nil, 51.04),
                                   line("full", nil, "q8_0", 50.85), line("window", 128, "q8_0", 50.97)], to: dir)
        let summary = try String(contentsOfFile: dir + "/summary.md", encoding: .utf8)
        #expect(summary.contains("| window+q8_0 | bounded | 50.97 | 50.85 |"), "\(summary)")
        #expect(summary.contains("| window | bounded | 51.04 | 51.12 |"), "\(summary)")
    }
}
