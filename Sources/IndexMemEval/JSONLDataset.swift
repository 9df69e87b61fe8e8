// IndexMem — evaluation. Apache-2.0.
//
// Any JSONL dataset in the shape kvpress and LongBench exports use: one object per line with
// `context`, `question`, `answers` (a list, or one string), and optional `answer_prefix`,
// `max_new_tokens`, `task`, `id`. A malformed line is reported with its line number; the
// others still run.

import Foundation

// MARK: - Dataset

public struct JSONLDataset: Sendable {
    public var samples: [EvalSample]
    /// `line N: problem` for every line that could not be read.
    public var errors: [String]

    public static func load(path: String, defaultMaxNewTokens: Int = 64) throws -> JSONLDataset {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalError.io("cannot read dataset \(path)") }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return parse(data, name: name, defaultMaxNewTokens: defaultMaxNewTokens)
    }

    public static func parse(_ data: Data, name: String, defaultMaxNewTokens: Int = 64) -> JSONLDataset {
        var samples: [EvalSample] = []
        var errors: [String] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let lineNumber = n + 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                errors.append("line \(lineNumber): not a JSON object")
                continue
            }
            guard let context = object["context"] as? String else { errors.append("line \(lineNumber): missing string 'context'"); continue }
            guard let question = object["question"] as? String else { errors.append("line \(lineNumber): missing string 'question'"); continue }
            let answers: [String]
            if let list = object["answers"] as? [Any], list.allSatisfy({ $0 is String }), !list.isEmpty {
                answers = list as! [String]
            } else if let one = object["answers"] as? String {
                answers = [one]
            } else {
                errors.append("line \(lineNumber): 'answers' must be a non-empty list of strings or a string")
                continue
            }
            var maxNew = defaultMaxNewTokens
            if let v = object["max_new_tokens"] {
                guard let i = v as? Int, i > 0, i <= 4096 else { errors.append("line \(lineNumber): 'max_new_tokens' must be an integer in 1...4096"); continue }
                maxNew = i
            }
            let prefix = object["answer_prefix"] as? String ?? ""
            let task = object["task"] as? String ?? name
            let id = (object["id"] as? String) ?? (object["id"] as? Int).map(String.init) ?? "\(name)-\(lineNumber)"
            samples.append(EvalSample(id: id, task: task, context: context, question: question, answers: answers,
                                      answerPrefix: prefix, maxNewTokens: maxNew))
        }
        return JSONLDataset(samples: samples, errors: errors)
    }
}
