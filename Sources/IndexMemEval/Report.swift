// IndexMem — evaluation. Apache-2.0.
//
// `eval merge` turns result lines (one or many shard files) into a Markdown summary, a CSV
// of every cell, compression curves (score and perplexity against budget, one line per
// policy, the full cache as a dashed reference) and needle-grid heatmaps.

import Foundation

// MARK: - Cells

public struct ReportCell: Sendable {
    public var task: String
    public var length: Int
    public var mode: String
    public var policy: String
    public var budget: Int?
    public var n: Int
    public var mean: Double
    /// Half-width of a 95 % confidence interval (normal approximation).
    public var ci95: Double
    public var perplexity: Double?
    /// Half-width of a 95 % confidence interval of the perplexity over the samples (normal
    /// approximation; 0 with one sample).
    public var perplexityCI95: Double? = nil
    public var kvBytesPeak: Double
    public var seconds: Double
    /// The KV entry type when not f16 (a row is compared with the full cache of its own type).
    public var kvType: String? = nil
}

public enum Report {
    /// Mean score per (task, length, mode, policy, budget); lengths of dataset samples are pooled (0).
    /// Mean and 95 % interval half-width (normal approximation; 0 for one value), summed in
    /// sorted order so that the report's bytes do not depend on the input order.
    static func meanAndCI95(_ values: [Double]) -> (mean: Double, ci95: Double) {
        let xs = values.sorted()
        let mean = xs.reduce(0, +) / Double(xs.count)
        guard xs.count > 1 else { return (mean, 0) }
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count - 1)
        return (mean, 1.96 * (variance / Double(xs.count)).squareRoot())
    }

    public static func cells(_ results: [EvalResult]) -> [ReportCell] {
        struct Key: Hashable { var task: String; var length: Int; var mode: String; var policy: String; var budget: Int?; var kvType: String? }
        var groups: [Key: [EvalResult]] = [:]
        for r in results {
            let length = r.dataset == nil ? r.length : 0
            let mode = r.budget == nil ? "full" : r.mode
            groups[Key(task: r.task, length: length, mode: mode, policy: r.policyLabel, budget: r.budget, kvType: r.kvType), default: []].append(r)
        }
        return groups.map { key, rs in
            let (mean, ci95) = Self.meanAndCI95(rs.map(\.score))
            let ppl = rs.compactMap(\.perplexity)
            let (pplMean, pplCI) = ppl.isEmpty ? (nil, nil) : Self.meanAndCI95(ppl)
            return ReportCell(task: key.task, length: key.length, mode: key.mode, policy: key.policy, budget: key.budget, n: rs.count,
                              mean: mean, ci95: ci95,
                              perplexity: pplMean, perplexityCI95: pplCI,
                              kvBytesPeak: Double(rs.map(\.kvBytesPeak).reduce(0, +)) / Double(rs.count),
                              seconds: rs.map(\.seconds).sorted().reduce(0, +) / Double(rs.count), kvType: key.kvType)
        }.sorted { ($0.task, $0.length, $0.mode, $0.policy, $0.budget ?? Int.max) < ($1.task, $1.length, $1.mode, $1.policy, $1.budget ?? Int.max) }
    }

    /// Writes summary.md, cells.csv and the SVG plots into `directory`; returns the files written.
    @discardableResult
    public static func write(results: [EvalResult], to directory: String, title: String = "IndexMem evaluation") throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cells = cells(results)
        var written: [String] = []
        func save(_ name: String, _ text: String) throws {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            written.append(name)
        }
        // CSV of every cell.
        var csv = "task,length,mode,policy,budget,n,mean_score,ci95,perplexity,kv_bytes_peak,seconds,perplexity_ci95\n"
        for c in cells {
            csv += "\(c.task),\(c.length),\(c.mode),\(c.policy),\(c.budget.map(String.init) ?? ""),\(c.n),\(String(format: "%.4f", c.mean)),"
                + "\(String(format: "%.4f", c.ci95)),\(c.perplexity.map { String(format: "%.4f", $0) } ?? ""),\(Int(c.kvBytesPeak)),\(String(format: "%.2f", c.seconds)),"
                + "\(c.perplexityCI95.map { String(format: "%.4f", $0) } ?? "")\n"
        }
        try save("cells.csv", csv)

        // Markdown: one table per (task, length): rows policy/mode, columns budgets.
        var md = "# \(title)\n\n"
        let models = Set(results.map(\.modelSha256))
        md += "\(results.count) results; model sha256 \(models.sorted().map { String($0.prefix(12)) }.joined(separator: ", ")); "
        md += "total wall time of the samples \(String(format: "%.0f", results.map(\.seconds).reduce(0, +))) s.\n\n"
        md += "Each cell: mean score in [0, 1] ± 95 % CI half-width (n samples); perplexity rows show perplexity.\n\n"
        let groups = Dictionary(grouping: cells) { "\($0.task)|\($0.length)" }
        for key in groups.keys.sorted() {
            let g = groups[key]!
            let (task, length) = (g[0].task, g[0].length)
            let budgets = Array(Set(g.compactMap(\.budget))).sorted()
            let isPPL = task == PerplexityTask.name
            md += "## \(task), \(length == 0 ? "dataset" : "\(length) tokens")\n\n"
            md += "| policy | mode | " + budgets.map { "\($0)" }.joined(separator: " | ") + (budgets.isEmpty ? "" : " | ") + "full |\n"
            md += "|---|---|" + budgets.map { _ in "---:|" }.joined() + "---:|\n"
            // The full cache of each KV entry type: a row's reference is the one of its own type.
            let fulls = g.filter { $0.budget == nil }
            func full(_ kvType: String?) -> ReportCell? { fulls.first { $0.kvType == kvType } }
            func fmt(_ c: ReportCell?) -> String {
                guard let c else { return "" }
                if isPPL, let p = c.perplexity { return String(format: "%.2f", p) }
                return String(format: "%.2f ± %.2f (%d)", c.mean, c.ci95, c.n)
            }
            let rows = Dictionary(grouping: g.filter { $0.budget != nil }) { "\($0.policy)|\($0.mode)" }
            for rowKey in rows.keys.sorted() {
                let r = rows[rowKey]!
                md += "| \(r[0].policy) | \(r[0].mode) | " + budgets.map { b in fmt(r.first { $0.budget == b }) }.joined(separator: " | ")
                md += (budgets.isEmpty ? "" : " | ") + "\(fmt(full(r[0].kvType))) |\n"
            }
            if rows.isEmpty { for f in fulls.sorted(by: { $0.policy < $1.policy }) { md += "| \(f.policy) | - | \(fmt(f)) |\n" } }
            md += "\n"
            // Compression curves per mode: mean and 95 % interval per budget, the full cache as
            // a dashed reference with its interval; perplexity cells without a perplexity are left out.
            func point(_ c: ReportCell) -> (y: Double, ci: Double?)? {
                if isPPL { return c.perplexity.map { ($0, c.perplexityCI95) } }
                return (c.mean, c.ci95)
            }
            for mode in Set(g.compactMap { $0.budget == nil ? nil : $0.mode }).sorted() {
                let series = Dictionary(grouping: g.filter { $0.mode == mode && $0.budget != nil }, by: \.policy)
                    .sorted { $0.key < $1.key }
                    .map { policy, cs in
                        ChartSeries(name: policy, points: cs.sorted { $0.budget! < $1.budget! }.compactMap { c in
                            point(c).map { ChartPoint(x: Double(c.budget!), y: $0.y, ci: $0.ci) }
                        })
                    }
                let refs = fulls.sorted { ($0.kvType ?? "") < ($1.kvType ?? "") }.compactMap { f in
                    point(f).map { ChartReference(name: "full cache" + (f.kvType.map { " (\($0))" } ?? ""), y: $0.y, ci: $0.ci) }
                }
                let name = "curve_\(task)_\(length)_\(mode).svg"
                try save(name, SVG.lineChart(title: "\(task), \(length == 0 ? "dataset" : "\(length) tokens"), \(mode)",
                                             xLabel: "budget (entries per layer and KV head)",
                                             yLabel: isPPL ? "perplexity" : "score (mean, 95 % CI)", series: series, references: refs,
                                             bounds: isPPL ? nil : 0...1))
                md += "![\(task) \(mode)](\(name))\n\n"
            }
        }
        // Needle grid: depth x length per (task, policy, budget, mode) over the depths swept at
        // two lengths or more; seed-drawn depths (one per sample) would give a grid of empty cells.
        func depthKey(_ r: EvalResult) -> Double? { r.depth.map { ($0 * 100).rounded() / 100 } }
        let withDepth = results.filter { $0.depth != nil && $0.dataset == nil && $0.task.hasPrefix("niah") }
        let grids = Dictionary(grouping: withDepth) { "\($0.task)|\($0.policyLabel)|\($0.budget.map(String.init) ?? "full")|\($0.budget == nil ? "full" : $0.mode)" }
        var gridSection = ""
        for key in grids.keys.sorted() {
            let rs = grids[key]!
            let lengths = Set(rs.map(\.length)).sorted()
            var lengthsPerDepth: [Double: Set<Int>] = [:]
            for r in rs { if let d = depthKey(r) { lengthsPerDepth[d, default: []].insert(r.length) } }
            let depths = lengthsPerDepth.filter { $0.value.count >= 2 }.keys.sorted()
            guard depths.count >= 3 else { continue }
            let values: [[Double?]] = depths.map { d in
                lengths.map { l in
                    let m = rs.filter { $0.length == l && depthKey($0) == d }.map(\.score)
                    return m.isEmpty ? nil : m.reduce(0, +) / Double(m.count)
                }
            }
            let parts = key.split(separator: "|").map(String.init)
            let name = "grid_\(parts.joined(separator: "_")).svg".replacingOccurrences(of: ":", with: "-").replacingOccurrences(of: ",", with: "-")
            try save(name, SVG.heatmap(title: "\(parts[0]): \(parts[1]) budget \(parts[2]) (\(parts[3]))", rowLabel: "needle depth",
                                       columnLabel: "context length (tokens)", rows: depths.map { String(format: "%.0f%%", $0 * 100) },
                                       columns: lengths.map(String.init), values: values))
            gridSection += "![\(key)](\(name))\n\n"
        }
        if !gridSection.isEmpty { md += "## Needle grid\n\n" + gridSection }
        try save("summary.md", md)
        return written
    }
}
