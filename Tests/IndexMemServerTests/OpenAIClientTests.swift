// IndexMem — server tests. Apache-2.0.
//
// The PyPI `openai` package drives the server (openai_client_test.py beside this file).
// It needs .venv-test (scripts/test_env.sh, which scripts/test.sh runs): without it the
// test fails and says so.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Testing

@Suite("The openai Python client against the server", .serialized)
struct OpenAIClientTests {
    @Test("chat, completions, streaming, errors and extension fields through openai-python")
    func openAIPython() async throws {
        let python = TestPaths.repositoryRoot + "/.venv-test/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("""
                \(python) is missing: the openai client tests need the Python environment of scripts/test_env.sh \
                (scripts/test.sh creates it; or run scripts/test_env.sh once)
                """)
            return
        }
        let script = TestPaths.repositoryRoot + "/Tests/IndexMemServerTests/openai_client_test.py"
        try await withServer { s in
            let port = s.port
            // The child process and the pipe block: a thread of their own, not the pool.
            let (status, text) = try await offPool { () throws -> (Int32, String) in
                let r = try ChildProcess.run(python, [script, "--base-url", "http://127.0.0.1:\(port)/v1"], mergeOutput: true)
                return (r.status, r.output)
            }
            #expect(status == 0, "openai_client_test.py failed:\n\(text)")
            #expect(text.contains(" passed, 0 failed"), "\(text)")
        }
    }
}
