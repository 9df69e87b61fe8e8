// IndexMem — server tests. Apache-2.0.
//
// The standing hostile suite (scripts/hostile_test.py, standard-library Python) against the
// `indexmem` executable that `swift test` builds beside the test bundle: every probe of
// issue 14 stays fixed. Loopback only, about a minute.

import Foundation
import IndexMemTestSupport
import Testing

@Suite("Hostile suite", .serialized)
struct HostileSuiteTests {
    static func executable() throws -> String { try ChildProcess.indexmemExecutable() }

    @Test("scripts/hostile_test.py: every probe passes, no 5xx, no crash, the RSS bound holds")
    func hostileSuite() async throws {
        let binary = try Self.executable()
        let model = try requireDefaultModel()
        let script = TestPaths.repositoryRoot + "/scripts/hostile_test.py"
        let (status, text) = try await offPool { () throws -> (Int32, String) in
            let r = try ChildProcess.run("/usr/bin/env", ["python3", script, "--binary", binary, "--model", model], mergeOutput: true)
            return (r.status, r.output)
        }
        #expect(status == 0, "hostile_test.py failed:\n\(text)")
        let summary = text.split(separator: "\n").last { $0.hasPrefix("hostile suite: ") }.map(String.init) ?? ""
        #expect(summary.contains(" 0 failed") && summary.contains(" 0 5xx") && summary.contains(" 0 crashes") && summary.contains(": held"),
                "\(text)")
    }
}
