/// The bans view, the audit view and the all-nodes clients table: their commands and keys.
extension ConsoleState {
    /// Replaces the bans view's rows (sorted by id).
    public mutating func updateBans(_ rows: [BanRow]) {
        bans.update(rows.sorted { $0.clientID < $1.clientID }, key: \.clientID)
    }

    /// Replaces the audit view's rows (newest first, as given).
    public mutating func updateAudit(_ rows: [AuditRow]) {
        audit.update(rows) { "\($0.time) \($0.action) \($0.arguments)" }
    }

    /// Shows `panel` in the clients pane's place, or the clients again if it is shown.
    public mutating func toggleOpsPanel(_ panel: OpsPanel) {
        if opsPanel == panel {
            opsPanel = nil
            setMessage("clients view", severity: .info)
        } else {
            opsPanel = panel
            isTopicsViewVisible = false
            setMessage(
                panel == .bans ? "bans view (u: unban the selected id · b: back to the clients)" : "audit view (A: back to the clients)",
                severity: .info
            )
        }
        focus = .clients
    }

    /// `a`, `clients all|here`: this node's connections or every node's.
    public mutating func setClientScope(_ scope: ClientScope) {
        guard scope == .thisNode || cluster != nil else {
            setMessage("clients all: not a cluster node (start with --cluster URL)", severity: .error)
            return
        }
        if scope == .thisNode && clientScope == .allNodes { clients.dropRemoteRows() }  // no 10,000 rows "closed"
        clientScope = scope
        opsPanel = nil
        isTopicsViewVisible = false
        focus = .clients
        setMessage(
            scope == .allNodes
                ? "clients of all nodes (rows up to a few seconds old · a: this node only)" : "clients of this node (a: all nodes)",
            severity: .info
        )
    }

    /// The commands that only change the view: `bans`, `audit`, `clients all|here`.
    mutating func applyOps(_ command: Command) -> Bool {
        switch command {
        case .bans:
            if opsPanel != .bans { toggleOpsPanel(.bans) }
        case .audit:
            if opsPanel != .audit { toggleOpsPanel(.audit) }
        case .clientScope(let scope):
            setClientScope(scope)
        default:
            return false
        }
        return true
    }

    /// Keys of the operator's views in navigate mode; `nil` for a key they leave to the others.
    mutating func handleOpsKey(_ key: Key, geometry: LayoutGeometry) -> [ConsoleAction]? {
        switch key {
        case .character("b"):
            toggleOpsPanel(.bans)
            return []
        case .character("A"):
            toggleOpsPanel(.audit)
            return []
        case .character("a"):
            setClientScope(clientScope == .allNodes ? .thisNode : .allNodes)
            return []
        default:
            break
        }
        guard let panel = opsPanel, focus == .clients else { return nil }
        let height = geometry.clientsViewportHeight
        let delta: Int?
        switch key {
        case .up: delta = -1
        case .down: delta = 1
        case .pageUp: delta = -max(1, height - 1)
        case .pageDown: delta = max(1, height - 1)
        case .home: delta = Int.min / 2
        case .end: delta = Int.max / 2
        default: delta = nil
        }
        if let delta {
            if panel == .bans { bans.moveSelection(by: delta, viewportHeight: height) } else { audit.moveSelection(by: delta, viewportHeight: height) }
            return []
        }
        switch key {
        case .character("u") where panel == .bans:
            guard let row = bans.selectedRow else {
                setMessage("no ban selected", severity: .error)
                return []
            }
            return [.execute(.unban(clientID: row.clientID))]
        case .character("k"), .character("B"), .character("s"), .character("S"):
            setMessage("the \(panel.rawValue) view has no client selected (\(panel == .bans ? "b" : "A"): back to the clients)", severity: .error)
            return []
        default:
            return nil
        }
    }
}
