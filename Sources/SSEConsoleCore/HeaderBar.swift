/// The header bar text: the longest variant that fits the width. Variants shed, in order: the
/// app name, the spacing inside groups, long labels (`clients` → `cl`), the URL scheme, the
/// uptime, the flags, double spacing, the byte rate, and finally all labels but one-letter
/// ones — values go last.
enum HeaderBar {
    static func text(_ stats: HeaderStats, width: Int) -> String {
        for level in 0...9 {
            let candidate = variant(stats, level: level)
            if displayWidth(of: candidate) <= width { return candidate }
        }
        return TextFit.truncate(variant(stats, level: 9), toWidth: width)
    }

    static func draw(_ canvas: inout Canvas, stats: HeaderStats, theme: Theme) {
        let style = theme.style(bold: true, reverse: true)
        canvas.fill(row: 0, col: 0, width: canvas.width, style: style)
        canvas.put(text(stats, width: max(0, canvas.width - 2)), row: 0, col: 1, style: style, maxWidth: canvas.width - 2)
    }

    private static func variant(_ s: HeaderStats, level: Int) -> String {
        let short = level >= 3
        let minimal = level >= 9
        var url = s.listenURL
        if level >= 4, let range = url.firstRange(of: "://") { url = String(url[range.upperBound...]) }
        let clients = Format.thousands(s.clientsConnected)
        let rateIn = Format.rate(s.eventsInPerSecond)
        let rateOut = Format.rate(s.eventsOutPerSecond)
        let timeout = Format.seconds(s.writeTimeout)

        var groups: [[String]] = []
        if level < 1 { groups.append(["sse-console"]) }
        groups.append([url])
        if level < 5 { groups.append(["up \(Format.duration(s.uptime))"]) }
        if minimal {
            groups.append(["\(clients)cl"])
            groups.append(["in\(rateIn)", "out\(rateOut)"])
            groups.append(["d\(s.totalDropped)", "k\(s.totalKicked)", "r\(s.totalRefused)"])
            groups.append(["\(timeout)/\(s.tolerance)"])
        } else if short {
            groups.append(["cl \(clients)"])
            var rates = ["in \(rateIn)", "out \(rateOut)"]
            if level < 8 { rates.append(Format.byteRateShort(s.bytesOutPerSecond)) }
            groups.append(rates)
            groups.append(["drop \(s.totalDropped)", "kick \(s.totalKicked)", "ref \(s.totalRefused)"])
            groups.append(["to \(timeout)", "tol \(s.tolerance)"])
        } else {
            groups.append(["clients \(clients)"])
            groups.append(["in \(rateIn)", "out \(rateOut)", Format.byteRate(s.bytesOutPerSecond)])
            groups.append(["dropped \(s.totalDropped)", "kicked \(s.totalKicked)", "refused \(s.totalRefused)"])
            groups.append(["timeout \(timeout)", "tol \(s.tolerance)"])
        }
        if level < 6, let flags = s.flags, !flags.isEmpty { groups.append([flags]) }
        // Long labels read best with every item apart; once shortened, items of a group share
        // one space and groups keep two until space runs out.
        let inner = level >= 2 ? " " : "  "
        let outer = level >= 7 ? " " : "  "
        return groups.map { $0.joined(separator: inner) }.joined(separator: outer)
    }
}
