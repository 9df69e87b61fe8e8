// IndexMem — evaluation. Apache-2.0.
//
// Small self-contained SVG charts: line charts (compression curves) and heatmaps (the needle
// grid). No dependencies; the output opens in any browser.

import Foundation

// MARK: - SVG

enum SVG {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func number(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A line chart: x on a log2 axis (budgets), one line per series, optional horizontal
    /// reference lines (the full cache).
    static func lineChart(title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(x: Double, y: Double)])],
                          references: [(name: String, y: Double)] = [], yRange: ClosedRange<Double>? = nil) -> String {
        let w = 640.0, h = 400.0, left = 60.0, right = 150.0, top = 40.0, bottom = 50.0
        let xs = series.flatMap { $0.points.map(\.x) }.filter { $0 > 0 }
        let ys = series.flatMap { $0.points.map(\.y) } + references.map(\.y)
        guard let xmin = xs.min(), let xmax = xs.max(), let ymin0 = ys.min(), let ymax0 = ys.max() else { return "" }
        let lx0 = log2(xmin), lx1 = max(log2(xmax), lx0 + 1)
        let yr = yRange ?? (min(ymin0, 0)...(ymax0 > ymin0 ? ymax0 * 1.05 : ymin0 + 1))
        func px(_ x: Double) -> Double { left + (log2(x) - lx0) / (lx1 - lx0) * (w - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - yr.lowerBound) / (yr.upperBound - yr.lowerBound)) * (h - top - bottom) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(number(w / 2 - right / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
        // Axes and ticks.
        out += "<line x1=\"\(number(left))\" y1=\"\(number(h - bottom))\" x2=\"\(number(w - right))\" y2=\"\(number(h - bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(h - bottom))\" stroke=\"black\"/>\n"
        for x in Set(xs).sorted() {
            out += "<line x1=\"\(number(px(x)))\" y1=\"\(number(h - bottom))\" x2=\"\(number(px(x)))\" y2=\"\(number(h - bottom + 4))\" stroke=\"black\"/>"
            out += "<text x=\"\(number(px(x)))\" y=\"\(number(h - bottom + 18))\" text-anchor=\"middle\">\(Int(x))</text>\n"
        }
        for i in 0...4 {
            let y = yr.lowerBound + Double(i) / 4 * (yr.upperBound - yr.lowerBound)
            out += "<line x1=\"\(number(left - 4))\" y1=\"\(number(py(y)))\" x2=\"\(number(w - right))\" y2=\"\(number(py(y)))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(number(left - 8))\" y=\"\(number(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", y))</text>\n"
        }
        out += "<text x=\"\(number((left + w - right) / 2))\" y=\"\(number(h - 10))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(number((top + h - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        var legend = 0
        for (name, y) in references {
            out += "<line x1=\"\(number(left))\" y1=\"\(number(py(y)))\" x2=\"\(number(w - right))\" y2=\"\(number(py(y)))\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n"
            out += legendEntry(name, color: "black", dashed: true, index: legend, x: w - right + 10, top: top)
            legend += 1
        }
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = s.points.filter { $0.x > 0 }.sorted { $0.x < $1.x }
            let path = pts.map { "\(number(px($0.x))),\(number(py($0.y)))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            for p in pts { out += "<circle cx=\"\(number(px(p.x)))\" cy=\"\(number(py(p.y)))\" r=\"3\" fill=\"\(color)\"/>" }
            out += "\n" + legendEntry(s.name, color: color, dashed: false, index: legend, x: w - right + 10, top: top)
            legend += 1
        }
        return out + "</svg>\n"
    }

    static func legendEntry(_ name: String, color: String, dashed: Bool, index: Int, x: Double, top: Double) -> String {
        let y = top + Double(index) * 18
        return "<line x1=\"\(number(x))\" y1=\"\(number(y))\" x2=\"\(number(x + 20))\" y2=\"\(number(y))\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            + "<text x=\"\(number(x + 26))\" y=\"\(number(y + 4))\">\(escape(name))</text>\n"
    }

    /// A heatmap: rows x columns of values in [0, 1], red (0) to green (1).
    static func heatmap(title: String, rowLabel: String, columnLabel: String, rows: [String], columns: [String], values: [[Double?]]) -> String {
        let cell = 48.0, left = 90.0, top = 50.0
        let w = left + cell * Double(columns.count) + 20, h = top + cell * Double(rows.count) + 50
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(number(w / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
        for (r, row) in values.enumerated() {
            for (c, v) in row.enumerated() {
                let x = left + Double(c) * cell, y = top + Double(r) * cell
                let fill: String
                if let v {
                    let t = max(0, min(1, v))
                    fill = String(format: "rgb(%d,%d,%d)", Int(215 - 170 * t), Int(48 + 142 * t), Int(39 + 40 * t))
                } else {
                    fill = "#eee"
                }
                out += "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(Int(cell))\" height=\"\(Int(cell))\" fill=\"\(fill)\" stroke=\"white\"/>"
                if let v { out += "<text x=\"\(number(x + cell / 2))\" y=\"\(number(y + cell / 2 + 4))\" text-anchor=\"middle\">\(String(format: "%.2f", v))</text>" }
                out += "\n"
            }
            out += "<text x=\"\(number(left - 8))\" y=\"\(number(top + Double(r) * cell + cell / 2 + 4))\" text-anchor=\"end\">\(escape(rows[r]))</text>\n"
        }
        for (c, name) in columns.enumerated() {
            out += "<text x=\"\(number(left + Double(c) * cell + cell / 2))\" y=\"\(number(top + cell * Double(rows.count) + 16))\" text-anchor=\"middle\">\(escape(name))</text>\n"
        }
        out += "<text x=\"\(number(left + cell * Double(columns.count) / 2))\" y=\"\(number(h - 8))\" text-anchor=\"middle\">\(escape(columnLabel))</text>\n"
        out += "<text transform=\"translate(14 \(number(top + cell * Double(rows.count) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(rowLabel))</text>\n"
        return out + "</svg>\n"
    }
}
