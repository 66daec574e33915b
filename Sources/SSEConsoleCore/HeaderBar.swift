/// The header bar text: the longest variant that fits the width. Variants shed, in order: the
/// app name, the spacing inside groups, long labels (`clients` → `cl`), the URL scheme, the
/// uptime, the flags, double spacing, the byte rate, and finally all labels but one-letter
/// ones — values go last. A cluster node adds a segment at the right end (see `fit`).
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
        let width = max(0, canvas.width - 2)
        guard let cluster = stats.cluster else {
            canvas.put(text(stats, width: width), row: 0, col: 1, style: style, maxWidth: width)
            return
        }
        let fitted = fit(stats, cluster: cluster, width: width, colors: theme.colors)
        canvas.put(fitted.main, row: 0, col: 1, style: style, maxWidth: width)
        // The cluster segment sits at the right end, coloured by state (reverse: the colour is the
        // background), so a node going offline is visible from across the room.
        let segment = " \(fitted.cluster) "
        let segmentWidth = displayWidth(of: segment)
        guard segmentWidth <= canvas.width else { return }
        canvas.put(segment, row: 0, col: canvas.width - segmentWidth,
                   style: theme.style(stateColor(cluster.state), bold: true, reverse: true))
    }

    static func stateColor(_ state: ClusterView.State) -> Color {
        switch state {
        case .online: .green
        case .connecting: .yellow
        case .offline: .red
        }
    }

    /// The main text and the cluster segment that fit `width` together: the main text sheds its
    /// labels first (down to level 7), then both shrink in turn; the cluster's state stays to the end.
    static func fit(_ stats: HeaderStats, cluster: ClusterView, width: Int, colors: Bool = true) -> (main: String, cluster: String) {
        // Two columns of padding around the segment plus one space to the main text.
        func fits(_ main: String, _ segment: String) -> Bool {
            displayWidth(of: main) + displayWidth(of: segment) + 3 <= width
        }
        let steps = (0...7).map { ($0, 0) } + [(7, 1), (7, 2), (8, 2), (9, 2), (9, 3), (9, 4)]
        for (mainLevel, clusterLevel) in steps {
            let main = variant(stats, level: mainLevel)
            let segment = clusterText(cluster, level: clusterLevel, colors: colors)
            if fits(main, segment) { return (main, segment) }
        }
        let segment = TextFit.truncate(clusterText(cluster, level: 4, colors: colors), toWidth: max(0, width - 2))
        let room = width - displayWidth(of: segment) - 3
        return (room > 0 ? TextFit.truncate(variant(stats, level: 9), toWidth: room) : "", segment)
    }

    /// The cluster segment, longest (level 0) to shortest (level 4):
    /// `cluster n1 online · 3 nodes · lag 0` … `n1 online`.
    static func clusterText(_ view: ClusterView, level: Int, colors: Bool = true) -> String {
        let name = Format.oneLine(view.nodeName, maxCharacters: 40)
        let lag = Format.thousands(Int(clamping: view.lag))
        switch view.state {
        case .online:
            switch level {
            case 0: return "cluster \(name) online · \(view.nodeCountText) · lag \(lag)"
            case 1: return "cluster \(name) online \(view.nodeCountText) lag \(lag)"
            case 2: return "\(name) online \(view.nodeCountText) lag \(lag)"
            case 3: return "\(name) online lag \(lag)"
            default: return "\(name) online"
            }
        case .connecting:
            return level < 2 ? "cluster \(name) connecting…" : "\(name) connecting"
        case .offline(let reason, let retryIn):
            // Without colour the state needs a marker of its own.
            let state = colors ? "offline" : "!offline"
            let retry = Format.seconds(retryIn)
            switch level {
            case 0: return "cluster \(name) \(state): \(ClusterView.shortReason(reason, width: 32)) · retry in \(retry)"
            case 1: return "cluster \(name) \(state): \(ClusterView.shortReason(reason, width: 20)) retry \(retry)"
            case 2: return "\(name) \(state): \(ClusterView.shortReason(reason, width: 12)) retry \(retry)"
            case 3: return "\(name) \(state) retry \(retry)"
            default: return "\(name) \(state)"
            }
        }
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
