// IndexMem — architecture tests. Apache-2.0.
//
// ARCHITECTURE.md's dependency table, enforced: every `import` of one of our modules in every
// source file must be allowed by the table below and declared in Package.swift. Change the
// table, the document and the manifest together.

import Foundation
import IndexMemTestSupport
import Testing

enum ImportRules {
    /// Which of our modules each module may import (ARCHITECTURE.md, "Modules").
    static let allowed: [String: Set<String>] = [
        "IndexMemKernelsVNNI": [],
        "IndexMemKernels": ["IndexMemKernelsVNNI"],
        "IndexMemGGUF": [],
        "IndexMemTokenizer": [],
        "IndexMemSafetensors": [],
        "IndexMemCache": ["IndexMemKernels"],
        "IndexMemModel": ["IndexMemKernels", "IndexMemGGUF", "IndexMemTokenizer", "IndexMemCache"],
        "IndexMem": ["IndexMemModel", "IndexMemCache", "IndexMemKernels", "IndexMemGGUF", "IndexMemTokenizer", "IndexMemSafetensors"],
        "IndexMemLearn": ["IndexMem", "IndexMemModel", "IndexMemCache", "IndexMemKernels", "IndexMemSafetensors"],
        "IndexMemEval": ["IndexMem", "IndexMemKernels"],
        "IndexMemServer": ["IndexMem"],
        "IndexMemTestSupport": ["IndexMemGGUF", "IndexMemKernels"],
        "indexmem": ["IndexMem", "IndexMemEval", "IndexMemServer", "IndexMemLearn", "IndexMemGGUF"],
    ]

    static let ours = Set(allowed.keys)

    /// Our modules imported by a Swift source text (`import M`, `@_exported import M`, `import struct M.T`).
    static func imports(in text: String) -> Set<String> {
        var out = Set<String>()
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ").map(String.init)
            while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
            guard words.first == "import", words.count >= 2 else { continue }
            let target = words.count >= 3 && ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"].contains(words[1]) ? words[2] : words[1]
            let module = String(target.split(separator: ".")[0])
            if ours.contains(module) { out.insert(module) }
        }
        return out
    }

    /// Our modules each target of Package.swift declares as dependencies.
    static func declared(manifest: String) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        var rest = Substring(manifest)
        while let target = [rest.range(of: ".target("), rest.range(of: ".executableTarget(")].compactMap({ $0 }).min(by: { $0.lowerBound < $1.lowerBound }) {
            rest = rest[target.upperBound...]
            guard let nameStart = rest.range(of: "name: \"") else { break }
            let afterName = rest[nameStart.upperBound...]
            guard let nameEnd = afterName.firstIndex(of: "\"") else { break }
            let name = String(afterName[..<nameEnd])
            // The target's arguments end at the parenthesis that closes `.target(`.
            var depth = 1, index = rest.startIndex
            while index < rest.endIndex && depth > 0 {
                if rest[index] == "(" { depth += 1 } else if rest[index] == ")" { depth -= 1 }
                index = rest.index(after: index)
            }
            let body = rest[..<index]
            var deps = Set<String>()
            if let d = body.range(of: "dependencies: [") {
                let list = body[d.upperBound...].prefix { $0 != "]" }
                for part in list.split(separator: "\"", omittingEmptySubsequences: false).enumerated() where part.offset % 2 == 1 {
                    if ours.contains(String(part.element)) { deps.insert(String(part.element)) }
                }
            }
            out[name] = deps
        }
        return out
    }
}

@Suite("Module dependencies follow ARCHITECTURE.md")
struct ImportRulesTests {
    @Test("every import of ours is allowed by the table and declared in Package.swift")
    func importsFollowTheTable() throws {
        let root = TestPaths.repositoryRoot
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        let declared = ImportRules.declared(manifest: manifest)
        var violations: [String] = []
        let sources = root + "/Sources"
        for module in try FileManager.default.contentsOfDirectory(atPath: sources).sorted() {
            guard let allowed = ImportRules.allowed[module] else {
                violations.append("Sources/\(module) is not in the table of ImportRules (and ARCHITECTURE.md)")
                continue
            }
            let files = FileManager.default.enumerator(atPath: sources + "/" + module)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files.sorted() {
                let text = try String(contentsOfFile: "\(sources)/\(module)/\(file)", encoding: .utf8)
                for imported in ImportRules.imports(in: text).sorted() where imported != module {
                    if !allowed.contains(imported) { violations.append("\(module)/\(file) imports \(imported), which ARCHITECTURE.md does not allow") }
                    if !(declared[module]?.contains(imported) ?? false) { violations.append("\(module)/\(file) imports \(imported), which Package.swift does not declare for \(module)") }
                }
            }
        }
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
    }

    @Test("the checker sees a forbidden import (a cache file importing the GGUF reader)")
    func checkerCatchesViolations() {
        let text = "// x\nimport Foundation\n@_exported import IndexMemGGUF\nimport struct IndexMemKernels.SplitMix64\n"
        let found = ImportRules.imports(in: text)
        #expect(found == ["IndexMemGGUF", "IndexMemKernels"])
        #expect(!ImportRules.allowed["IndexMemCache"]!.contains("IndexMemGGUF"))
        let manifest = #".target(name: "A", dependencies: ["IndexMemKernels", .product(name: "X", package: "y")]), .target(name: "B"),"#
        let declared = ImportRules.declared(manifest: manifest)
        #expect(declared["A"] == ["IndexMemKernels"] && declared["B"] == [])
    }
}
