// IndexMem — command line. Apache-2.0.

import ArgumentParser
import IndexMem

// MARK: - policies

struct PoliciesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policies", abstract: "List the cache policies with their options and defaults.",
        discussion: "Each policy declares these in its own file; --markdown prints the README's policy table.")

    @Flag(name: .long, help: "Print the README's policy table (Markdown).") var markdown = false

    func run() throws {
        Terminal.writeOut(markdown ? PolicyTable.markdown() : PolicyTable.text())
    }
}
