// IndexMem — public facade. Apache-2.0.

// MARK: - Errors

/// Errors of the facade, with messages meant for the person running the engine.
public enum EngineError: Error, CustomStringConvertible, Sendable {
    case modelNotFound(String)
    case promptTooLong(tokens: Int, limit: Int)
    case emptyPrompt
    case invalidOption(String)

    public var description: String {
        switch self {
        case .modelNotFound(let p): return "model file not found: \(p) (run scripts/setup.sh to fetch the default model)"
        case .promptTooLong(let t, let l):
            return "the prompt has \(t) tokens but the model allows \(l) positions (prompt plus generated tokens)"
        case .emptyPrompt: return "the prompt is empty"
        case .invalidOption(let m): return "invalid option: \(m)"
        }
    }
}
