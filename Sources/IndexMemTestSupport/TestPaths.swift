// IndexMem — test support. Apache-2.0.

import Foundation

// MARK: - Paths of the repository, fixtures and models

/// Where tests find the repository's files, independent of the working directory.
public enum TestPaths {
    /// The repository root (the folder holding Package.swift).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        // Sources/IndexMemTestSupport/TestPaths.swift -> repository root.
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `Tests/Fixtures`.
    public static var fixtures: String { repositoryRoot + "/Tests/Fixtures" }

    /// `models/`, where scripts/setup.sh puts the GGUF files.
    public static var models: String { repositoryRoot + "/models" }

    /// The default model (SmolLM2-135M-Instruct Q4_1).
    public static var defaultModel: String { models + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// The long-context model (Gemma 3 270M Q4_K_M).
    public static var gemmaModel: String { models + "/gemma-3-270m-Q4_K_M.gguf" }
}

/// Thrown when a real-model test cannot find its model file.
public struct MissingModelError: Error, CustomStringConvertible {
    public let path: String
    /// The command that fetches it.
    public var fetch: String = "scripts/setup.sh"
    public init(path: String, fetch: String = "scripts/setup.sh") {
        self.path = path
        self.fetch = fetch
    }
    public var description: String { "model not found at \(path): run \(fetch) (scripts/test.sh fetches every model the tests use)" }
}

/// The default model's path, or an error telling how to fetch it. Real-model tests fail
/// (not skip) without it: the README's test command fetches it first.
public func requireDefaultModel() throws -> String {
    let path = TestPaths.defaultModel
    guard FileManager.default.fileExists(atPath: path) else { throw MissingModelError(path: path) }
    return path
}

/// The long-context model's path (Gemma 3 270M), or an error telling how to fetch it.
public func requireGemmaModel() throws -> String {
    let path = TestPaths.gemmaModel
    guard FileManager.default.fileExists(atPath: path) else { throw MissingModelError(path: path, fetch: "scripts/setup.sh gemma") }
    return path
}
