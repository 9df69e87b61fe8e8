// IndexMem — test support. Apache-2.0.
//
// Tests that drive the command line or a Python script run child processes: one way to find
// the built `indexmem` and one way to run a child and collect what it printed.

import Foundation

public enum ChildProcess {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// `indexmem` in the build directory of the running test bundle.
    public static func indexmemExecutable() throws -> String {
        let bundle = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        // macOS runs tests inside IndexMemPackageTests.xctest/Contents/MacOS.
        while directory.path.contains(".xctest") { directory.deleteLastPathComponent() }
        let path = directory.appendingPathComponent("indexmem").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Failure("no indexmem executable at \(path): run the tests with `swift test` (it builds every target)")
        }
        return path
    }

    /// Runs `executable arguments` to its end; returns its status and stdout and stderr,
    /// separately or (`mergeOutput`) as one stream in stdout.
    public static func run(_ executable: String, _ arguments: [String], mergeOutput: Bool = false) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = mergeOutput ? out : Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting, so a full pipe cannot block the child.
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = mergeOutput ? Data() : err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
