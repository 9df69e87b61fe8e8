// IndexMem — command line. Apache-2.0.

import ArgumentParser
import Foundation
import IndexMem
import IndexMemLearn

// MARK: - train

/// The command as typed (written into the adapter's metadata).
private var commandLine: String { (["indexmem"] + CommandLine.arguments.dropFirst()).joined(separator: " ") }

/// On a terminal, a trainer's log lines clear the status line and its progress redraws it as a bar.
private func showTrainingProgress(_ label: String, log: inout (String) -> Void, progress: inout ((Int, Int, Double, Double) -> Void)?) {
    guard Terminal.isInteractive else { return }
    log = { line in Terminal.clearStatus(); FileHandle.standardError.write(Data((line + "\n").utf8)) }
    progress = { done, total, rate, left in
        let width = 30, filled = width * done / max(total, 1)
        Terminal.status("\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total) \(Int(rate)) tok/s ETA \(Int(left))s")
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train IndexMem's indexer for a model on CPU (teacher passes of the frozen model, layer-local fits) and write an adapter.",
        discussion: """
        Resumable: statistics are checkpointed beside --out (OUT.checkpoint); run the same command again to continue.
        --layers a-b trains some budgeted layers only (e.g. one per machine); join the parts with `indexmem train merge`.
        `indexmem train memory --adapter FILE` then fits the latent memory and adds it to the adapter.
        """,
        subcommands: [TrainRunCommand.self, TrainMergeCommand.self, TrainMemoryCommand.self], defaultSubcommand: TrainRunCommand.self)
}

struct TrainRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Train (or resume) and write an adapter.")

    @OptionGroup var model: ModelArguments
    @Option(name: .long, help: "Training text: a directory of .txt files or one file (scripts/fetch_training_data.sh).")
    var corpus: String = "data/training"
    @Option(name: .long, help: "Adapter file to write (safetensors).") var out: String
    @Option(name: .long, help: "Training sequences.") var sequences: Int = 48
    @Option(name: .long, help: "Tokens per sequence.") var length: Int = 2048
    @Option(name: .long, help: "Block (prefill chunk) size of the teacher pass.") var block: Int = 256
    @Option(name: .long, help: "Protected recent window.") var window: Int = 64
    @Option(name: .long, help: "Budgeted layers to train, a-b (default: all).") var layers: String?
    @Option(name: .long, help: "Seed of the training sequences.") var seed: UInt64 = 0
    @Option(name: .long, help: "Target of the write-time fit: question (the final request's attention), max or mean future attention.") var target: String = "question"
    @Option(name: .long, help: "Fit of the write-time indexer: ridge (closed form on the log target) or listwise (Adam on the KL of its ranking).")
    var staticFit: String = "listwise"

    func validate() throws {
        guard sequences > 0, length >= 2 * block, block > 0, window >= 0 else {
            throw ValidationError("--sequences must be positive and --length at least two blocks")
        }
        guard ["question", "max", "mean"].contains(target) else { throw ValidationError("--target must be question, max or mean") }
        guard ["ridge", "listwise"].contains(staticFit) else { throw ValidationError("--static-fit must be ridge or listwise") }
        if let layers { _ = try Self.parseLayers(layers) }
    }

    static func parseLayers(_ text: String) throws -> ClosedRange<Int> {
        let parts = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if parts.count == 1, let a = parts[0], a >= 0 { return a...a }
        guard parts.count == 2, let a = parts[0], let b = parts[1], a >= 0, a <= b else {
            throw ValidationError("--layers takes a-b (budgeted layer indices, e.g. 0-14)")
        }
        return a...b
    }

    func run() throws {
        let engine = try model.loadEngine(progress: Terminal.isInteractive)
        let corpus = try TrainingCorpus(path: self.corpus)
        var options = TrainingOptions()
        options.sequences = sequences
        options.length = length
        options.block = block
        options.window = window
        options.seed = seed
        options.target = target
        options.staticFit = staticFit
        options.layers = try layers.map(Self.parseLayers)
        let trainer = IndexerTrainer(engine: engine, corpus: corpus, options: options)
        showTrainingProgress("train", log: &trainer.log, progress: &trainer.progress)
        try trainer.train(out: out, command: commandLine)
    }
}

struct TrainMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "Join adapters trained on disjoint --layers ranges.")
    @Argument(help: "Partial adapter files.") var parts: [String]
    @Option(name: .long, help: "Adapter file to write.") var out: String

    func run() throws {
        try IndexerTrainer.mergeAdapters(parts, out: out)
        FileHandle.standardError.write(Data("train merge: wrote \(out)\n".utf8))
    }
}

struct TrainMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Fit the latent memory of every budgeted layer (bounded mode simulated beside the full cache) and add it to an adapter.",
        discussion: "Resumable: the key subspace and each sequence's samples are checkpointed beside --out (OUT.memory-checkpoint).")

    @OptionGroup var model: ModelArguments
    @Option(name: .long, help: "Training text (scripts/fetch_training_data.sh).") var corpus: String = "data/training"
    @Option(name: .long, help: "Adapter to add the memory to (default: adapters/<model file>.indexmem.safetensors).") var adapter: String?
    @Option(name: .long, help: "Adapter file to write (default: the --adapter file).") var out: String?
    @Option(name: .long, help: "Training sequences (every 4th held out).") var sequences: Int = 12
    @Option(name: .long, help: "Tokens per sequence.") var length: Int = 2048
    @Option(name: .long, help: "Rank of the key subspace.") var rank: Int = 8
    @Option(name: .long, help: "Budgets simulated, in turn per sequence.") var budgets: String = "128,256,512"
    @Option(name: .long, help: "Policies whose evictions the memory learns to restore.") var policies: String = "indexmem,tova,window"
    @Option(name: .long, help: "Seed of the training sequences.") var seed: UInt64 = 1

    func run() throws {
        let engine = try model.loadEngine(progress: Terminal.isInteractive)
        let corpus = try TrainingCorpus(path: self.corpus)
        var options = MemoryTrainingOptions()
        options.sequences = sequences
        options.length = length
        options.rank = rank
        options.seed = seed
        options.budgets = try budgets.split(separator: ",").map {
            guard let b = Int($0.trimmingCharacters(in: .whitespaces)), b > 0 else { throw ValidationError("--budgets takes positive integers") }
            return b
        }
        options.policies = policies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let adapter = self.adapter ?? IndexerAdapterFile.defaultPath(modelPath: engine.path)
        let trainer = MemoryTrainer(engine: engine, corpus: corpus, options: options, adapter: adapter)
        showTrainingProgress("train memory", log: &trainer.log, progress: &trainer.progress)
        try trainer.train(out: out ?? adapter, command: commandLine)
    }
}
