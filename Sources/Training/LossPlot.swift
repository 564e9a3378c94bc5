// An SVG plot of training and held-out losses per head, with the entropy floors
// as dashed lines, and below it (when evaluations record it) each MTP depth's held-out
// teacher-forced agreement with the main head, the predictor of speculative decoding's
// acceptance. Plain SVG 1.1, no dependencies.

import Foundation

/// Loss curves for an SVG plot.
public struct LossPlot {
    /// A named polyline: (step, loss) points.
    public struct Series {
        public var name: String
        public var points: [(Double, Double)]
        public var color: String
        public var dashed: Bool
        public var width: Double
    }

    public var title: String
    /// Cross-entropy curves (nats), the upper panel.
    public var series: [Series] = []
    /// Fractions in [0, 1] (per-depth agreement), the lower panel; none draws no panel.
    public var agreementSeries: [Series] = []

    public init(title: String) { self.title = title }

    /// Train curves (thin), held-out curves (thick, with dots) and floors (dashed) per head.
    public init(title: String, history: [StepRecord], evaluations: [Evaluation], mainFloor: Double?, depthFloors: [Double]?) {
        self.title = title
        let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        let depths = history.first?.depthLosses.count ?? evaluations.first?.depthLosses.count ?? 0
        let lastStep = Double(Swift.max(history.last?.step ?? 1, evaluations.last?.step ?? 1))
        for k in 0...depths {
            let color = palette[k % palette.count]
            let label = k == 0 ? "main" : "MTP depth \(k - 1)"
            let train = history.map { (Double($0.step), Double(k == 0 ? $0.mainLoss : $0.depthLosses[k - 1])) }
            series.append(Series(name: "\(label) train", points: smoothed(train), color: color, dashed: false, width: 1))
            let held = evaluations.map { (Double($0.step), k == 0 ? $0.mainLoss : $0.depthLosses[k - 1]) }
            series.append(Series(name: "\(label) held-out", points: held, color: color, dashed: false, width: 2.5))
            if let floor = k == 0 ? mainFloor : depthFloors?[k - 1] {
                series.append(Series(name: "\(label) floor", points: [(0, floor), (lastStep, floor)], color: color, dashed: true, width: 1.2))
            }
            if k > 0 {
                let agreed = evaluations.compactMap { e in e.depthAgreements.map { (Double(e.step), $0[k - 1]) } }
                if !agreed.isEmpty {
                    agreementSeries.append(Series(name: "\(label) agreement", points: agreed, color: color, dashed: false, width: 2.5))
                }
            }
        }
    }

    /// The SVG document: `width` × `height` for the losses, plus the agreement panel below when there is one.
    public func svg(width: Double = 760, height: Double = 440) -> String {
        let all = series.flatMap(\.points).filter { $0.1.isFinite }
        let x0 = 0.0, x1 = Swift.max(1, all.map(\.0).max() ?? 1)
        let yMin = Swift.max(0, (all.map(\.1).min() ?? 0) - 0.1)
        let yMax = Swift.min((all.map(\.1).max() ?? 1) + 0.1, yMin + 8)
        let (l, r, t, b) = (60.0, 190.0, 36.0, 44.0)
        func px(_ x: Double) -> Double { l + (x - x0) / (x1 - x0) * (width - l - r) }
        func py(_ y: Double) -> Double { t + (1 - (Swift.min(y, yMax) - yMin) / Swift.max(yMax - yMin, 1e-9)) * (height - t - b) }
        let total = height + (agreementSeries.isEmpty ? 0 : Self.agreementPanelHeight)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(total))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(l)\" y=\"22\" font-size=\"15\">\(escaped(title))</text>\n"
        for i in 0...5 {
            let y = yMin + Double(i) / 5 * (yMax - yMin)
            s += "<line x1=\"\(f(l))\" y1=\"\(f(py(y)))\" x2=\"\(f(width - r))\" y2=\"\(f(py(y)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f(l - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", y))</text>\n"
            let x = x0 + Double(i) / 5 * (x1 - x0)
            s += "<text x=\"\(f(px(x)))\" y=\"\(f(height - b + 16))\" text-anchor=\"middle\">\(Int(x))</text>\n"
        }
        s += "<text x=\"\(f((l + width - r) / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">step</text>\n"
        s += "<text x=\"14\" y=\"\(f((t + height - b) / 2))\" transform=\"rotate(-90 14 \(f((t + height - b) / 2)))\" text-anchor=\"middle\">cross-entropy (nats)</text>\n"
        s += "<rect x=\"\(f(l))\" y=\"\(f(t))\" width=\"\(f(width - l - r))\" height=\"\(f(height - t - b))\" fill=\"none\" stroke=\"#444\"/>\n"
        for (i, line) in series.enumerated() where !line.points.isEmpty {
            let pts = line.points.filter { $0.1.isFinite }.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\"\(dash) points=\"\(pts)\"/>\n"
            let ly = t + 14 + Double(i) * 16
            s += "<line x1=\"\(f(width - r + 10))\" y1=\"\(f(ly - 4))\" x2=\"\(f(width - r + 34))\" y2=\"\(f(ly - 4))\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\"\(dash)/>"
            s += "<text x=\"\(f(width - r + 40))\" y=\"\(f(ly))\">\(escaped(line.name))</text>\n"
        }
        if !agreementSeries.isEmpty { s += agreementPanel(top: height, width: width, left: l, right: r, x0: x0, x1: x1) }
        return s + "</svg>\n"
    }

    /// The lower panel: agreement curves on a 0 … 1 axis, the same steps as the upper panel.
    private func agreementPanel(top: Double, width: Double, left l: Double, right r: Double, x0: Double, x1: Double) -> String {
        let (t, b, h) = (top + 10, 36.0, Self.agreementPanelHeight)
        func px(_ x: Double) -> Double { l + (x - x0) / (x1 - x0) * (width - l - r) }
        func py(_ y: Double) -> Double { t + (1 - Swift.min(1, Swift.max(0, y))) * (h - 10 - b) }
        var s = ""
        for i in 0...4 {
            let y = Double(i) / 4
            s += "<line x1=\"\(f(l))\" y1=\"\(f(py(y)))\" x2=\"\(f(width - r))\" y2=\"\(f(py(y)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f(l - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", y))</text>\n"
        }
        s += "<text x=\"14\" y=\"\(f((t + py(0)) / 2))\" transform=\"rotate(-90 14 \(f((t + py(0)) / 2)))\" text-anchor=\"middle\">agreement</text>\n"
        s += "<rect x=\"\(f(l))\" y=\"\(f(t))\" width=\"\(f(width - l - r))\" height=\"\(f(py(0) - t))\" fill=\"none\" stroke=\"#444\"/>\n"
        for (i, line) in agreementSeries.enumerated() {
            let pts = line.points.filter { $0.1.isFinite }.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" points=\"\(pts)\"/>\n"
            let ly = t + 14 + Double(i) * 16
            s += "<line x1=\"\(f(width - r + 10))\" y1=\"\(f(ly - 4))\" x2=\"\(f(width - r + 34))\" y2=\"\(f(ly - 4))\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\"/>"
            s += "<text x=\"\(f(width - r + 40))\" y=\"\(f(ly))\">\(escaped(line.name))</text>\n"
        }
        return s
    }

    /// The lower panel's height (added below the requested height).
    static let agreementPanelHeight = 200.0

    private func f(_ x: Double) -> String { String(format: "%.1f", x) }
    private func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
    private func smoothed(_ p: [(Double, Double)]) -> [(Double, Double)] {
        // Exponential moving average (0.9) so noisy per-step losses read as a curve.
        var out: [(Double, Double)] = []
        var avg: Double? = nil
        for (x, y) in p {
            avg = avg.map { 0.9 * $0 + 0.1 * y } ?? y
            out.append((x, avg!))
        }
        return out
    }
}
