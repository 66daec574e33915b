/// The last minute of events/s in and out, one value per second, for the rates pane's sparklines.
///
/// The app records the rates it already samples (a few times a second); a second keeps the
/// highest sample taken in it, so a burst shorter than a second still shows. Fixed size: 60 slots.
public struct RateHistory: Sendable, Hashable {
    /// Seconds kept.
    public static let span = 60

    /// Events/s published, oldest first, one per second (missing seconds repeat the previous value).
    public private(set) var eventsIn: [Double] = []
    /// Event copies/s written to connections, oldest first.
    public private(set) var eventsOut: [Double] = []
    /// The whole second (Unix time) of the newest value.
    public private(set) var newestSecond: Int?

    public init() {}

    /// Records one sample of the rates, taken at `time` (Unix seconds).
    public mutating func record(eventsIn rateIn: Double, eventsOut rateOut: Double, at time: Double) {
        let second = Int(time.rounded(.down))
        let rateIn = rateIn.isFinite ? max(0, rateIn) : 0
        let rateOut = rateOut.isFinite ? max(0, rateOut) : 0
        if let newest = newestSecond, second <= newest {
            // Same second (or a clock step back): keep the peak.
            eventsIn[eventsIn.count - 1] = max(eventsIn[eventsIn.count - 1], rateIn)
            eventsOut[eventsOut.count - 1] = max(eventsOut[eventsOut.count - 1], rateOut)
            return
        }
        if let newest = newestSecond, let lastIn = eventsIn.last, let lastOut = eventsOut.last {
            // A UI thread that stalled for a while: the rate over the gap was what it measured next,
            // but repeating the last one keeps a stall from drawing as a false dip to zero.
            for _ in 0..<min(Self.span, second - newest - 1) {
                eventsIn.append(lastIn)
                eventsOut.append(lastOut)
            }
        }
        eventsIn.append(rateIn)
        eventsOut.append(rateOut)
        newestSecond = second
        if eventsIn.count > Self.span {
            eventsIn.removeFirst(eventsIn.count - Self.span)
            eventsOut.removeFirst(eventsOut.count - Self.span)
        }
    }
}

/// Draws a series of values as one row of block characters, as htop and btop draw their meters.
public enum Sparkline {
    /// Eight heights, lowest first.
    public static let blocks: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    /// The same eight heights in ASCII, for terminals whose locale is not UTF-8 (and `--ascii`).
    public static let asciiBlocks: [Character] = [".", ",", "-", "~", "=", "+", "*", "#"]

    /// The newest values that fit `width` columns, newest at the right, scaled to `maximum`
    /// (the largest value when `nil`). Zero is a space, so idle and "a little" differ at a glance.
    /// When there are more values than columns, each column shows the peak of the seconds it covers.
    public static func render(_ values: [Double], width: Int, maximum: Double? = nil, unicode: Bool = true) -> String {
        guard width > 0 else { return "" }
        let columns = Self.columns(values, width: width)
        let top = maximum ?? columns.max() ?? 0
        let ramp = unicode ? blocks : asciiBlocks
        var out = String(repeating: " ", count: width - columns.count)
        for value in columns {
            guard value > 0, top > 0 else {
                out.append(" ")
                continue
            }
            let level = Int((value / top * Double(ramp.count)).rounded(.up)) - 1
            out.append(ramp[max(0, min(ramp.count - 1, level))])
        }
        return out
    }

    /// Seconds per column so that the whole minute fits `width`: 1 when it fits, else 2, 3, …
    public static func secondsPerColumn(count: Int, width: Int) -> Int {
        guard width > 0, count > width else { return 1 }
        return (count + width - 1) / width
    }

    private static func columns(_ values: [Double], width: Int) -> [Double] {
        let step = secondsPerColumn(count: values.count, width: width)
        guard step > 1 else { return values }
        // Group from the newest end, so the right-most column is always the current second.
        var groups: [Double] = []
        var end = values.count
        while end > 0 {
            let start = max(0, end - step)
            groups.append(values[start..<end].max() ?? 0)
            end = start
        }
        return groups.reversed()
    }
}

/// The slim pane under the header: `in ▁▂▅█▃ 12.0/s  out ▁▃▇█▂ 9.9k/s  last 60s`.
enum RatesPane {
    static func draw(_ canvas: inout Canvas, history: RateHistory, row: Int, theme: Theme, unicode: Bool) {
        canvas.fill(row: row, col: 0, width: canvas.width, style: theme.style())
        let inNow = Format.rate(history.eventsIn.last ?? 0)
        let outNow = Format.rate(history.eventsOut.last ?? 0)
        let inPeak = "peak " + Format.rate(history.eventsIn.max() ?? 0)
        let outPeak = "peak " + Format.rate(history.eventsOut.max() ?? 0)
        let seconds = max(1, history.eventsIn.count)
        let span = "last \(seconds)s"
        // Numbers first; then as much sparkline as fits, down to one column per 3 s (20 for the
        // minute) before the peaks and the span give way.
        func width(_ parts: [String]) -> Int { parts.map { displayWidth(of: $0) }.reduce(0, +) }
        let base = 1 + width(["in ", " " + inNow, "   out ", " " + outNow])
        let levels = [
            (peaks: true, span: true, fixed: base + width([" " + inPeak, " " + outPeak, "   " + span])),
            (peaks: true, span: false, fixed: base + width([" " + inPeak, " " + outPeak])),
            (peaks: false, span: false, fixed: base),
        ]
        let level = levels.first { (canvas.width - $0.fixed) / 2 >= 20 } ?? levels[2]
        let sparkWidth = max(0, min(RateHistory.span, (canvas.width - level.fixed) / 2))
        let withPeaks = level.peaks
        var x = 1
        func put(_ text: String, _ style: CellStyle) {
            x += canvas.put(text, row: row, col: x, style: style)
        }
        put("in ", theme.style(.cyan, bold: true))
        put(Sparkline.render(history.eventsIn, width: sparkWidth, unicode: unicode), theme.style(.cyan))
        put(" " + inNow, theme.style(bold: true))
        if withPeaks { put(" " + inPeak, theme.style(.gray)) }
        put("   out ", theme.style(.green, bold: true))
        put(Sparkline.render(history.eventsOut, width: sparkWidth, unicode: unicode), theme.style(.green))
        put(" " + outNow, theme.style(bold: true))
        if withPeaks { put(" " + outPeak, theme.style(.gray)) }
        if level.span { put("   " + span, theme.style(.gray, dim: true)) }
    }
}
