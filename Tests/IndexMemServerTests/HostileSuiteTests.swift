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
    /// `indexmem` in the build directory of the running test bundle.
    static func executable() throws -> String {
        let bundle = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        while directory.path.contains(".xctest") { directory.deleteLastPathComponent() }
        let path = directory.appendingPathComponent("indexmem").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("no indexmem executable at \(path): run the tests with `swift test` (it builds every target)")
        }
        return path
    }

    @Test("scripts/hostile_test.py: every probe passes, no 5xx, no crash, the RSS bound holds")
    func hostileSuite() async throws {
        let binary = try Self.executable()
        let model = try requireDefaultModel()
        let script = TestPaths.repositoryRoot + "/scripts/hostile_test.py"
        let (status, text) = try await offPool { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, "--binary", binary, "--model", model]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()  // until the child exits
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(status == 0, "hostile_test.py failed:\n\(text)")
        let summary = text.split(separator: "\n").last { $0.hasPrefix("hostile suite: ") }.map(String.init) ?? ""
        #expect(summary.contains(" 0 failed") && summary.contains(" 0 5xx") && summary.contains(" 0 crashes") && summary.contains(": held"),
                "\(text)")
    }
}
