import ArgumentParser

/// `--audit-log`: where the audit trail of state-changing actions is appended as JSON lines.
struct AuditOptions: ParsableArguments {
    @Option(
        name: .customLong("audit-log"),
        help: ArgumentHelp(
            "File to append the audit trail to, one JSON object per line (broadcasts, kicks, bans, unbans; fsynced in batches).",
            valueName: "path")
    )
    var path: String?
}
