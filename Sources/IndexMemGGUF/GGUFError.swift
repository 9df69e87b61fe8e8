// IndexMem — GGUF reader. Apache-2.0.

// MARK: - Errors

/// Everything that can be wrong with a GGUF file, each with a message a user can act on.
public enum GGUFError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The first four bytes are not `GGUF`.
    case badMagic(found: UInt32)
    /// A version this reader does not know (it reads 2 and 3).
    case unsupportedVersion(UInt32)
    /// The file ends before a value that must be there.
    case truncated(offset: Int, needed: Int, fileSize: Int)
    /// A count or length that cannot be right (it would exceed the file).
    case implausibleCount(what: String, count: UInt64)
    /// A metadata value type number that does not exist.
    case unknownValueType(UInt32, key: String)
    /// A string that is not valid UTF-8.
    case invalidUTF8(offset: Int)
    /// Two metadata entries or tensors with the same name.
    case duplicateName(String)
    /// A tensor type number this engine does not know.
    case unknownTensorType(rawValue: UInt32, tensor: String)
    /// A tensor whose shape or data range is impossible.
    case invalidTensor(name: String, reason: String)
    /// `general.alignment` is not a power of two from 1 to 2^20.
    case invalidAlignment(UInt64)
    /// A metadata key that is required is missing.
    case missingKey(String)
    /// A metadata key holds a value of a type other than expected.
    case wrongValueType(key: String, expected: String, found: String)
    /// A tensor that is required is missing.
    case missingTensor(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open GGUF file '\(Self.escaped(path))': \(reason)"
        case .badMagic(let found):
            return "not a GGUF file: magic is 0x\(String(found, radix: 16)), expected 0x46554747 ('GGUF')"
        case .unsupportedVersion(let v): return "unsupported GGUF version \(v) (this reader supports 2 and 3)"
        case .truncated(let offset, let needed, let size):
            return "GGUF file is truncated: needed \(needed) bytes at offset \(offset) but the file has \(size) bytes"
        case .implausibleCount(let what, let count):
            return "GGUF file is corrupt: \(what) of \(count) does not fit in the file"
        case .unknownValueType(let t, let key): return "GGUF metadata '\(Self.escaped(key))' has unknown value type \(t)"
        case .invalidUTF8(let offset): return "GGUF string at offset \(offset) is not valid UTF-8"
        case .duplicateName(let name): return "GGUF file lists '\(Self.escaped(name))' twice"
        case .unknownTensorType(let raw, let tensor):
            return "tensor '\(Self.escaped(tensor))' has tensor type \(raw), which this engine does not support "
                + "(supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)"
        case .invalidTensor(let name, let reason): return "tensor '\(Self.escaped(name))' is invalid: \(reason)"
        case .invalidAlignment(let a): return "GGUF general.alignment \(a) is not a power of two from 1 to 1048576"
        case .missingKey(let key): return "GGUF metadata key '\(Self.escaped(key))' is missing"
        case .wrongValueType(let key, let expected, let found):
            return "GGUF metadata '\(Self.escaped(key))' should be \(expected) but is \(found)"
        case .missingTensor(let name): return "tensor '\(Self.escaped(name))' is missing from the GGUF file"
        }
    }

    /// A name from the file as printable text: a corrupted key may hold NUL bytes or terminal
    /// escapes, which must not reach a log or a terminal raw.
    public static func escaped(_ text: String) -> String {
        var out = ""
        for s in text.unicodeScalars {
            switch s {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case " "..."~": out.unicodeScalars.append(s)
            default:
                // Printable non-ASCII (a Chinese tensor name) stays; controls and the like do not.
                if s.value >= 0xA0 && s.properties.generalCategory != .format && s.properties.generalCategory != .unassigned
                    && s.properties.generalCategory != .control && s.properties.generalCategory != .lineSeparator
                    && s.properties.generalCategory != .paragraphSeparator {
                    out.unicodeScalars.append(s)
                } else {
                    out += "\\u{\(String(s.value, radix: 16))}"
                }
            }
        }
        return out
    }
}
