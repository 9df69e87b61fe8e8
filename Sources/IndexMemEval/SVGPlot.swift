// IndexMem — evaluation. Apache-2.0.
//
// Small self-contained SVG charts: line charts (compression curves) and heatmaps (the needle
// grid). No dependencies; the output opens in any browser, and the same input gives the same
// bytes (nothing depends on hashing order, the clock or the locale).

import Foundation

// MARK: - Chart data

/// One point of a curve: `ci` is the half-width of its 95 % interval, if known.
public struct ChartPoint: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var ci: Double?
    public init(x: Double, y: Double, ci: Double? = nil) { self.x = x; self.y = y; self.ci = ci }
}

/// One curve (one policy).
public struct ChartSeries: Sendable, Equatable {
    public var name: String
    public var points: [ChartPoint]
    public init(name: String, points: [ChartPoint]) { self.name = name; self.points = points }
    /// Learned policies (IndexMem's own indexers) are drawn last, on top, in bold.
    public var isLearned: Bool { name.hasPrefix("indexmem") }
}

/// A horizontal reference line (the full cache), with its 95 % interval if known.
public struct ChartReference: Sendable, Equatable {
    public var name: String
    public var y: Double
    public var ci: Double?
    public init(name: String, y: Double, ci: Double? = nil) { self.name = name; self.y = y; self.ci = ci }
}

/// A y axis: its range, its tick values and whether it is logarithmic.
public struct ChartAxis: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var ticks: [Double]
    public var isLog: Bool
    /// Decimals that tell the ticks apart.
    public var decimals: Int

    public func label(_ v: Double) -> String { SVG.format(v, decimals: decimals) }
}

// MARK: - SVG

public enum SVG {
    /// Colours of the baselines, then of the learned policies (kept apart so IndexMem's own
    /// curves never share a colour with a baseline).
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#e377c2", "#aec7e8", "#98df8a"]
    static let learnedPalette = ["#d62728", "#9467bd", "#000000"]
    static let markers = ["circle", "square", "triangle", "diamond", "triangle-down", "plus", "cross"]
    static let referenceColor = "#444444"

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ v: Double) -> String { String(format: "%.1f", v) }

    /// `v` with `decimals` decimals, never "-0".
    static func format(_ v: Double, decimals: Int) -> String {
        let s = String(format: "%.\(max(0, decimals))f", v)
        return s.hasPrefix("-") && s.dropFirst().allSatisfy { $0 == "0" || $0 == "." } ? String(s.dropFirst()) : s
    }

    // MARK: Ticks and axes

    /// The round step (1, 2 or 5 times a power of ten) closest above `raw`.
    public static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, floor(log10(raw)))
        let f = raw / p
        let m: Double = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10
        return m * p
    }

    /// Round tick values (1-2-5 steps) inside `lower...upper`, about `target` of them (at least two).
    public static func niceTicks(lower: Double, upper: Double, target: Int = 5) -> [Double] {
        guard upper > lower else { return [lower] }
        var step = niceStep((upper - lower) / Double(max(1, target)))
        var ticks = Self.ticks(lower: lower, upper: upper, step: step)
        for _ in 0..<60 where ticks.count < 2 { step = niceStep(step / 2.5); ticks = Self.ticks(lower: lower, upper: upper, step: step) }
        return ticks.isEmpty ? [lower, upper] : ticks
    }

    static func ticks(lower: Double, upper: Double, step: Double) -> [Double] {
        let eps = step * 1e-9
        let first = Int((lower / step - 1e-9).rounded(.up)), last = Int((upper / step + 1e-9).rounded(.down))
        guard first <= last else { return [] }
        return (first...last).map { Double($0) * step }.map { abs($0) < eps ? 0 : $0 }
    }

    /// Round ticks for a log axis: 1-2-5 per decade, thinner or denser as the range asks.
    public static func logTicks(lower: Double, upper: Double) -> [Double] {
        guard lower > 0, upper > lower else { return niceTicks(lower: lower, upper: upper) }
        let mantissas: [[Double]] = [[1], [1, 2, 5], [1, 1.5, 2, 3, 5, 7], [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9]]
        let d0 = Int(floor(log10(lower))), d1 = Int(ceil(log10(upper)))
        for set in mantissas {
            var ticks: [Double] = []
            for d in d0...d1 {
                for m in set {
                    let v = (m * pow(10, Double(d)) * 1e6).rounded() / 1e6
                    if v >= lower * (1 - 1e-12) && v <= upper * (1 + 1e-12) { ticks.append(v) }
                }
            }
            if ticks.count >= 4 || (set.count == 3 && ticks.count >= 3 && d1 - d0 >= 3) { return ticks }
        }
        return niceTicks(lower: lower, upper: upper)
    }

    /// Decimals needed to tell ticks apart: enough for the smallest gap between two of them.
    static func decimals(_ ticks: [Double]) -> Int {
        let gaps = zip(ticks.dropFirst(), ticks).map { $0 - $1 }.filter { $0 > 0 }
        guard let gap = gaps.min() else { return ticks.first.map { abs($0) >= 10 || $0 == 0 ? 0 : 2 } ?? 0 }
        return max(0, min(6, Int((-log10(gap) - 1e-9).rounded(.up))))
    }

    /// The y axis for values spanning `low...high` (CIs and reference lines included).
    /// Bounded scores (`bounds` given, e.g. 0...1) keep the whole bounded range unless the data
    /// span less than a fifth of it (then at least a tenth of it is shown around the data);
    /// unbounded values (perplexity) are fitted, on a log axis when the largest value is more
    /// than `logRatio` times the smallest. A small margin keeps curves off the frame.
    public static func yAxis(low: Double, high: Double, bounds: ClosedRange<Double>? = nil, logRatio: Double = 3) -> ChartAxis {
        var lo = min(low, high), hi = max(low, high)
        if let bounds {
            let full = bounds.upperBound - bounds.lowerBound
            lo = min(max(lo, bounds.lowerBound), bounds.upperBound); hi = max(min(hi, bounds.upperBound), bounds.lowerBound)
            if hi - lo >= full / 5 || hi - lo <= full * 1e-9 {
                // Most of the range, or one value only (all 0, all 1): the whole range reads best.
                (lo, hi) = (bounds.lowerBound, bounds.upperBound)
            } else if hi - lo < full / 10 {
                let mid = (lo + hi) / 2
                lo = mid - full / 20; hi = mid + full / 20
                if lo < bounds.lowerBound { hi += bounds.lowerBound - lo; lo = bounds.lowerBound }
                if hi > bounds.upperBound { lo -= hi - bounds.upperBound; hi = bounds.upperBound }
            } else {
                let m = (hi - lo) * 0.05
                lo = max(bounds.lowerBound, lo - m); hi = min(bounds.upperBound, hi + m)
            }
            let ticks = niceTicks(lower: lo, upper: hi)
            let m = (hi - lo) * 0.03
            return ChartAxis(lower: lo - m, upper: hi + m, ticks: ticks, isLog: false, decimals: decimals(ticks))
        }
        if lo > 0 && hi / lo > logRatio {
            let l0 = log10(lo), l1 = log10(hi), m = (l1 - l0) * 0.05
            let lower = pow(10, l0 - m), upper = pow(10, l1 + m)
            let ticks = logTicks(lower: lower, upper: upper)
            return ChartAxis(lower: lower, upper: upper, ticks: ticks, isLog: true, decimals: decimals(ticks))
        }
        var m = (hi - lo) * 0.06
        if m == 0 { m = max(abs(hi) * 0.05, 0.05) }
        let lower = lo >= 0 ? max(0, lo - m) : lo - m, upper = hi + m
        let ticks = niceTicks(lower: lower, upper: upper)
        return ChartAxis(lower: lower, upper: upper, ticks: ticks, isLog: false, decimals: decimals(ticks))
    }

    // MARK: Line chart

    /// A line chart: x on a log2 axis labelled with the budgets, one line per series with its
    /// 95 % interval as a translucent band, dashed horizontal reference lines (the full cache)
    /// with their interval, round ticks on a y axis fitted to everything drawn. `bounds`: the
    /// range the values live in (scores: 0...1), nil for unbounded values (perplexity).
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [ChartSeries],
                                 references: [ChartReference] = [], bounds: ClosedRange<Double>? = nil) -> String {
        // Learned policies last (on top), each group by name: the input order does not matter.
        let series = series.map { s in ChartSeries(name: s.name, points: s.points.filter { $0.x > 0 && $0.y.isFinite }.sorted { $0.x < $1.x }) }
            .filter { !$0.points.isEmpty }
            .sorted { ($0.isLearned ? 1 : 0, $0.name) < ($1.isLearned ? 1 : 0, $1.name) }
        let references = references.filter { $0.y.isFinite }
        let xs = Array(Set(series.flatMap { $0.points.map(\.x) })).sorted()
        guard let xmin = xs.first, let xmax = xs.last else { return "" }
        var lows: [Double] = [], highs: [Double] = []
        for p in series.flatMap(\.points) { let c = abs(p.ci ?? 0); lows.append(p.y - c); highs.append(p.y + c) }
        for r in references { let c = abs(r.ci ?? 0); lows.append(r.y - c); highs.append(r.y + c) }
        // A log axis cannot show an interval reaching zero: fit it to the positive values.
        let positiveLow = lows.filter { $0 > 0 }.min() ?? (series.flatMap(\.points).map(\.y) + references.map(\.y)).min()!
        var axis = yAxis(low: lows.min()!, high: highs.max()!, bounds: bounds)
        if axis.isLog && lows.min()! <= 0 { axis = yAxis(low: positiveLow, high: highs.max()!, bounds: bounds) }

        // Layout: the legend sits right of the plot, as wide as its longest name.
        let legendNames = references.map(\.name) + series.map(\.name)
        let legendWidth = 46 + 7.5 * Double(legendNames.map(\.count).max() ?? 0)
        let left = 64.0, top = 40.0, bottom = 52.0, plotWidth = 470.0, right = max(120, legendWidth + 16)
        let h = max(400, top + Double(legendNames.count) * 20 + bottom)
        let w = left + plotWidth + right
        let x0 = left, x1 = left + plotWidth, y0 = top, y1 = h - bottom

        // x: log2 of the budget, half a doubling of room on either side.
        let lx0 = log2(xmin), lx1 = log2(xmax), pad = max(0.35, (lx1 - lx0) * 0.06)
        func px(_ x: Double) -> Double { x0 + (log2(x) - (lx0 - pad)) / ((lx1 + pad) - (lx0 - pad)) * (x1 - x0) }
        func ty(_ y: Double) -> Double { axis.isLog ? log10(max(y, axis.lower * 1e-3)) : y }
        let tl = ty(axis.lower), tu = ty(axis.upper)
        func py(_ y: Double) -> Double { y0 + (1 - (ty(y) - tl) / (tu - tl)) * (y1 - y0) }
        // Intervals stop at the range the values live in (a score's interval at 0 and 1).
        let clampLow = max(axis.lower, bounds?.lowerBound ?? -.infinity), clampHigh = min(axis.upper, bounds?.upperBound ?? .infinity)
        func clampY(_ y: Double) -> Double { min(max(y, clampLow), clampHigh) }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(number((x0 + x1) / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        out += "<defs><clipPath id=\"plot\"><rect x=\"\(number(x0))\" y=\"\(number(y0))\" width=\"\(number(x1 - x0))\" height=\"\(number(y1 - y0))\"/></clipPath></defs>\n"

        // Grid and ticks.
        for t in axis.ticks {
            let y = py(t)
            out += "<line x1=\"\(number(x0))\" y1=\"\(number(y))\" x2=\"\(number(x1))\" y2=\"\(number(y))\" stroke=\"#e3e3e3\"/>"
            out += "<line x1=\"\(number(x0 - 5))\" y1=\"\(number(y))\" x2=\"\(number(x0))\" y2=\"\(number(y))\" stroke=\"black\"/>"
            out += "<text x=\"\(number(x0 - 8))\" y=\"\(number(y + 4))\" text-anchor=\"end\">\(axis.label(t))</text>\n"
        }
        var lastLabel = -Double.infinity
        for x in xs {
            let p = px(x)
            out += "<line x1=\"\(number(p))\" y1=\"\(number(y0))\" x2=\"\(number(p))\" y2=\"\(number(y1))\" stroke=\"#f0f0f0\"/>"
            out += "<line x1=\"\(number(p))\" y1=\"\(number(y1))\" x2=\"\(number(p))\" y2=\"\(number(y1 + 5))\" stroke=\"black\"/>"
            // Budgets too close to the last label keep their tick but not their label.
            let label = x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : format(x, decimals: 2)
            if p - lastLabel >= 7.5 * Double(label.count) + 6 {
                out += "<text x=\"\(number(p))\" y=\"\(number(y1 + 19))\" text-anchor=\"middle\">\(label)</text>"
                lastLabel = p
            }
            out += "\n"
        }
        out += "<rect x=\"\(number(x0))\" y=\"\(number(y0))\" width=\"\(number(x1 - x0))\" height=\"\(number(y1 - y0))\" fill=\"none\" stroke=\"black\"/>\n"
        out += "<text x=\"\(number((x0 + x1) / 2))\" y=\"\(number(h - 12))\" text-anchor=\"middle\">\(escape(xLabel)) (log scale)</text>\n"
        out += "<text transform=\"translate(18 \(number((y0 + y1) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel + (axis.isLog ? " (log scale)" : "")))</text>\n"

        // Plot contents, clipped to the plot area.
        out += "<g clip-path=\"url(#plot)\">\n"
        // Bands first (all series), then lines, so no band hides a line.
        for r in references {
            if let c = r.ci, c > 0 {
                let a = py(clampY(r.y + c)), b = py(clampY(r.y - c))
                out += "<rect class=\"ci-band\" x=\"\(number(x0))\" y=\"\(number(a))\" width=\"\(number(x1 - x0))\" height=\"\(number(max(0, b - a)))\" fill=\"\(referenceColor)\" fill-opacity=\"0.10\"/>\n"
            }
        }
        let styles = seriesStyles(series)
        for (s, style) in zip(series, styles) where s.points.contains(where: { ($0.ci ?? 0) > 0 }) {
            if s.points.count >= 2 {
                let upper = s.points.map { "\(number(px($0.x))),\(number(py(clampY($0.y + abs($0.ci ?? 0)))))" }
                let lower = s.points.reversed().map { "\(number(px($0.x))),\(number(py(clampY($0.y - abs($0.ci ?? 0)))))" }
                out += "<polygon class=\"ci-band\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(style.color)\" fill-opacity=\"\(s.isLearned ? "0.16" : "0.07")\" stroke=\"none\"/>\n"
            } else {
                for p in s.points {
                    let c = abs(p.ci ?? 0), x = px(p.x), a = py(clampY(p.y + c)), b = py(clampY(p.y - c))
                    out += "<path class=\"ci-bar\" d=\"M\(number(x - 4)) \(number(a))H\(number(x + 4))M\(number(x)) \(number(a))V\(number(b))M\(number(x - 4)) \(number(b))H\(number(x + 4))\" stroke=\"\(style.color)\" stroke-width=\"1.5\" fill=\"none\"/>\n"
                }
            }
        }
        for r in references {
            let y = py(r.y)
            out += "<line x1=\"\(number(x0))\" y1=\"\(number(y))\" x2=\"\(number(x1))\" y2=\"\(number(y))\" stroke=\"\(referenceColor)\" stroke-width=\"1.5\" stroke-dasharray=\"7 4\"/>\n"
        }
        for (s, style) in zip(series, styles) {
            let path = s.points.map { "\(number(px($0.x))),\(number(py($0.y)))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(style.color)\" stroke-width=\"\(s.isLearned ? "3" : "1.8")\" stroke-linejoin=\"round\"/>\n"
            for p in s.points { out += marker(style.marker, x: px(p.x), y: py(p.y), color: style.color, size: s.isLearned ? 5 : 4) }
            out += "\n"
        }
        out += "</g>\n"
        // Reference labels inside the plot at its left end, on the side away from the curves.
        for r in references {
            let y = py(r.y)
            let firstYs = series.compactMap { $0.points.first.map { py($0.y) } }
            let curvesAbove = !firstYs.isEmpty && firstYs.reduce(0, +) / Double(firstYs.count) < y
            let roomAbove = y - 6 >= y0 + 12, roomBelow = y + 15 <= y1 - 4
            let below = (curvesAbove && roomBelow) || !roomAbove
            let ty = below ? y + 15 : y - 6
            let ci = r.ci.map { $0 > 0 ? " ± " + format($0, decimals: axis.decimals + 1) : "" } ?? ""
            out += "<text x=\"\(number(x0 + 6))\" y=\"\(number(ty))\" fill=\"\(referenceColor)\" font-size=\"11\">\(escape(r.name)) \(format(r.y, decimals: axis.decimals + 1))\(ci)</text>\n"
        }

        // Legend.
        let lxs = x1 + 16
        var row = 0
        for r in references {
            let y = y0 + 8 + Double(row) * 20
            out += "<line x1=\"\(number(lxs))\" y1=\"\(number(y))\" x2=\"\(number(lxs + 28))\" y2=\"\(number(y))\" stroke=\"\(referenceColor)\" stroke-width=\"1.5\" stroke-dasharray=\"7 4\"/>"
            out += "<text x=\"\(number(lxs + 36))\" y=\"\(number(y + 4))\">\(escape(r.name))</text>\n"
            row += 1
        }
        for (s, style) in zip(series, styles) {
            let y = y0 + 8 + Double(row) * 20
            out += "<line x1=\"\(number(lxs))\" y1=\"\(number(y))\" x2=\"\(number(lxs + 28))\" y2=\"\(number(y))\" stroke=\"\(style.color)\" stroke-width=\"\(s.isLearned ? "3" : "1.8")\"/>"
            out += marker(style.marker, x: lxs + 14, y: y, color: style.color, size: s.isLearned ? 5 : 4)
            out += "<text x=\"\(number(lxs + 36))\" y=\"\(number(y + 4))\"\(s.isLearned ? " font-weight=\"bold\"" : "")>\(escape(s.name))</text>\n"
            row += 1
        }
        return out + "</svg>\n"
    }

    /// Colour and marker per series (in drawing order): baselines and learned policies from
    /// their own palettes; markers cycle on their own so a repeated colour gets another marker.
    static func seriesStyles(_ series: [ChartSeries]) -> [(color: String, marker: String)] {
        var base = 0, learned = 0
        return series.map { s in
            if s.isLearned {
                defer { learned += 1 }
                return (learnedPalette[learned % learnedPalette.count], ["circle", "square", "diamond"][learned % 3])
            }
            defer { base += 1 }
            return (palette[base % palette.count], markers[base % markers.count])
        }
    }

    static func marker(_ kind: String, x: Double, y: Double, color: String, size r: Double) -> String {
        switch kind {
        case "square":
            let s = r * 0.9
            return "<rect x=\"\(number(x - s))\" y=\"\(number(y - s))\" width=\"\(number(2 * s))\" height=\"\(number(2 * s))\" fill=\"\(color)\"/>"
        case "triangle":
            return "<polygon points=\"\(number(x)),\(number(y - r * 1.2)) \(number(x - r * 1.1)),\(number(y + r * 0.8)) \(number(x + r * 1.1)),\(number(y + r * 0.8))\" fill=\"\(color)\"/>"
        case "triangle-down":
            return "<polygon points=\"\(number(x)),\(number(y + r * 1.2)) \(number(x - r * 1.1)),\(number(y - r * 0.8)) \(number(x + r * 1.1)),\(number(y - r * 0.8))\" fill=\"\(color)\"/>"
        case "diamond":
            return "<polygon points=\"\(number(x)),\(number(y - r * 1.3)) \(number(x + r)),\(number(y)) \(number(x)),\(number(y + r * 1.3)) \(number(x - r)),\(number(y))\" fill=\"\(color)\"/>"
        case "plus":
            return "<path d=\"M\(number(x - r * 1.2)) \(number(y))H\(number(x + r * 1.2))M\(number(x)) \(number(y - r * 1.2))V\(number(y + r * 1.2))\" stroke=\"\(color)\" stroke-width=\"2.2\"/>"
        case "cross":
            let d = r * 0.95
            return "<path d=\"M\(number(x - d)) \(number(y - d))L\(number(x + d)) \(number(y + d))M\(number(x - d)) \(number(y + d))L\(number(x + d)) \(number(y - d))\" stroke=\"\(color)\" stroke-width=\"2.2\"/>"
        default:
            return "<circle cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"\(number(r))\" fill=\"\(color)\"/>"
        }
    }

    // MARK: Heatmap

    /// A heatmap: rows x columns of values in [0, 1], red (0) to green (1).
    public static func heatmap(title: String, rowLabel: String, columnLabel: String, rows: [String], columns: [String], values: [[Double?]]) -> String {
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
