// IndexMem — plot tests. Apache-2.0.

import Foundation
import IndexMemEval
import Testing

@Suite("SVG plots")
struct PlotTests {
    /// True when `v` is 1, 2 or 5 times a power of ten, times an integer: a round tick.
    static func isRound(_ v: Double, step: Double) -> Bool {
        abs(v / step - (v / step).rounded()) < 1e-6
    }

    static func ppl(_ values: [Double], ci: Double = 0) -> [ChartSeries] {
        [ChartSeries(name: "snapkv", points: values.enumerated().map { ChartPoint(x: Double(64 << $0.offset), y: $0.element, ci: ci) })]
    }

    @Test("round steps are 1, 2 or 5 times a power of ten", arguments: [
        (0.88, 1.0), (0.2, 0.2), (0.21, 0.5), (3.1, 5.0), (7, 10), (0.013, 0.02), (1, 1), (140, 200),
    ])
    func niceStep(raw: Double, step: Double) {
        #expect(abs(SVG.niceStep(raw) - step) < 1e-12)
    }

    @Test("ticks are round, evenly spaced, inside the range and cover it", arguments: [
        (14.0, 18.0), (0.0, 1.0), (41.7, 46.1), (0.013, 0.019), (-3.2, 7.9), (1234.0, 1290.0), (0.5, 0.52),
    ])
    func ticksCoverData(lower: Double, upper: Double) {
        let ticks = SVG.niceTicks(lower: lower, upper: upper)
        #expect(ticks.count >= 2 && ticks.count <= 11)
        let step = ticks[1] - ticks[0]
        #expect(abs(SVG.niceStep(step) - step) < step * 1e-9, "step \(step) is not 1-2-5")
        for (a, b) in zip(ticks, ticks.dropFirst()) { #expect(abs((b - a) - step) < step * 1e-6) }
        for t in ticks {
            #expect(t >= lower - 1e-12 && t <= upper + 1e-12)
            #expect(Self.isRound(t, step: step))
        }
        // Covering: no gap wider than one step between the data's ends and the outer ticks.
        #expect(ticks.first! - lower < step + 1e-12 && upper - ticks.last! < step + 1e-12)
    }

    @Test("a perplexity axis for data 14..18 is fitted to them, with round labels, not started at 0")
    func perplexityAxisFitted() {
        let axis = SVG.yAxis(low: 14, high: 18)
        #expect(!axis.isLog)
        #expect(axis.lower > 13 && axis.lower < 14)
        #expect(axis.upper > 18 && axis.upper < 19)
        #expect(axis.ticks == [14, 15, 16, 17, 18])
        #expect(axis.ticks.map(axis.label) == ["14", "15", "16", "17", "18"])

        let svg = SVG.lineChart(title: "perplexity", xLabel: "budget", yLabel: "perplexity", series: Self.ppl([18, 16.5, 15, 14.2]),
                                references: [ChartReference(name: "full cache", y: 14)])
        #expect(svg.contains(">14</text>") && svg.contains(">18</text>"))
        #expect(!svg.contains(">0</text>") && !svg.contains(">0.00</text>"))
        // Budgets label the x axis.
        for b in [64, 128, 256, 512] { #expect(svg.contains(">\(b)</text>")) }
    }

    @Test("perplexity spanning more than 3x goes on a log axis with round ticks")
    func logAxis() {
        let axis = SVG.yAxis(low: 12, high: 95)
        #expect(axis.isLog)
        #expect(axis.lower < 12 && axis.lower > 10 && axis.upper > 95 && axis.upper < 110)
        #expect(axis.ticks.count >= 3)
        #expect(axis.ticks.allSatisfy { $0 >= axis.lower && $0 <= axis.upper })
        #expect(axis.ticks.contains(20) && axis.ticks.contains(50))
    }

    @Test("scores keep 0..1 unless their span is tiny")
    func scoreAxis() {
        let wide = SVG.yAxis(low: 0.1, high: 0.9, bounds: 0...1)
        #expect(wide.ticks.map(wide.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(wide.lower <= 0 && wide.upper >= 1)
        // All zero: still the whole range.
        let zero = SVG.yAxis(low: 0, high: 0, bounds: 0...1)
        #expect(zero.lower <= 0 && zero.upper >= 1)
        // A tiny span is fitted, within [0, 1].
        let tiny = SVG.yAxis(low: 0.93, high: 0.97, bounds: 0...1)
        #expect(tiny.lower > 0.8 && tiny.upper < 1.05)
        #expect(tiny.ticks.allSatisfy { $0 >= 0.85 && $0 <= 1 })
    }

    @Test("95 % intervals are drawn as bands (error bars for a lone point), the full cache's too, and only when they exist")
    func bands() {
        let withCI = SVG.lineChart(title: "t", xLabel: "x", yLabel: "y", series: Self.ppl([18, 16, 15], ci: 0.4),
                                   references: [ChartReference(name: "full cache", y: 14.5, ci: 0.3)])
        #expect(withCI.components(separatedBy: "class=\"ci-band\"").count - 1 == 2) // one series band, one reference band
        #expect(withCI.contains("stroke-dasharray") && withCI.contains("full cache"))
        // The band widens the axis: 18 + 0.4 fits.
        let without = SVG.lineChart(title: "t", xLabel: "x", yLabel: "y", series: Self.ppl([18, 16, 15]),
                                    references: [ChartReference(name: "full cache", y: 14.5)])
        #expect(!without.contains("ci-band") && !without.contains("ci-bar"))
        let lone = SVG.lineChart(title: "t", xLabel: "x", yLabel: "y", series: Self.ppl([16], ci: 0.5))
        #expect(lone.contains("ci-bar"))
    }

    @Test("learned policies are drawn last and bold, whatever the input order; the same input gives the same bytes")
    func orderAndDeterminism() {
        let a = ChartSeries(name: "indexmem", points: [ChartPoint(x: 64, y: 0.8, ci: 0.1), ChartPoint(x: 128, y: 0.9, ci: 0.05)])
        let b = ChartSeries(name: "h2o", points: [ChartPoint(x: 128, y: 0.5, ci: 0.1), ChartPoint(x: 64, y: 0.3, ci: 0.1)])
        let c = ChartSeries(name: "snapkv", points: [ChartPoint(x: 64, y: 0.4), ChartPoint(x: 128, y: 0.6)])
        let ref = [ChartReference(name: "full cache", y: 0.95, ci: 0.03)]
        let one = SVG.lineChart(title: "t", xLabel: "x", yLabel: "score", series: [a, b, c], references: ref, bounds: 0...1)
        let two = SVG.lineChart(title: "t", xLabel: "x", yLabel: "score", series: [c, a, b], references: ref, bounds: 0...1)
        #expect(one == two)
        #expect(one == SVG.lineChart(title: "t", xLabel: "x", yLabel: "score", series: [a, b, c], references: ref, bounds: 0...1))
        // The last curve drawn is the learned one, thick.
        let lastPolyline = String(one.components(separatedBy: "<polyline").last!.prefix { $0 != ">" })
        #expect(lastPolyline.contains("stroke-width=\"3\""))
        #expect(one.contains("font-weight=\"bold\">indexmem</text>"))
        #expect(!one.contains("font-weight=\"bold\">h2o</text>"))
    }

    @Test("a report's curves carry the cells' intervals and the full cache, byte for byte the same on a second run")
    func reportCurves() throws {
        func result(_ policy: String, budget: Int?, sample: Int, ppl: Double) -> EvalResult {
            EvalResult(id: "perplexity-2048-\(sample)", task: "perplexity", length: 2048, policy: policy, budget: budget, ratio: nil,
                       mode: "bounded", score: 1 / ppl, output: "", answers: [], kvBytesPeak: 1, kvBytesFullCache: 2, modelSha256: "sha",
                       seconds: 1, depth: nil, sample: sample, seed: 0, sinks: 4, window: 32, chunk: 256, evictions: 0, generatedTokens: 0,
                       perplexity: ppl, dataset: nil)
        }
        var results: [EvalResult] = []
        for s in 0..<4 {
            let noise = Double(s) * 0.3
            results.append(result("full", budget: nil, sample: s, ppl: 14 + noise))
            for (i, b) in [64, 128, 256].enumerated() {
                results.append(result("snapkv", budget: b, sample: s, ppl: 18 - 1.2 * Double(i) + noise))
                results.append(result("indexmem", budget: b, sample: s, ppl: 16 - 0.6 * Double(i) + noise))
            }
        }
        let cell = try #require(Report.cells(results).first { $0.policy == "snapkv" && $0.budget == 64 })
        #expect(cell.perplexityCI95 != nil && cell.perplexityCI95! > 0)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("indexmem-plots-\(getpid())").path
        try? FileManager.default.removeItem(atPath: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        _ = try Report.write(results: results, to: base + "/a")
        _ = try Report.write(results: results.reversed(), to: base + "/b")
        let a = try Data(contentsOf: URL(fileURLWithPath: base + "/a/curve_perplexity_2048_bounded.svg"))
        let b = try Data(contentsOf: URL(fileURLWithPath: base + "/b/curve_perplexity_2048_bounded.svg"))
        #expect(a == b)
        let svg = String(decoding: a, as: UTF8.self)
        #expect(svg.contains("class=\"ci-band\""))
        #expect(svg.contains("full cache"))
        #expect(!svg.contains(">0</text>"))
    }
}
