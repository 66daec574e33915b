/// Builds cell styles, dropping colours in monochrome mode (NO_COLOR) so callers never branch on
/// it; markers that replace colour (`!`, `>`) are added by the renderers themselves.
struct Theme: Sendable {
    let colors: Bool

    func style(
        _ foreground: Color = .default, background: Color = .default,
        bold: Bool = false, dim: Bool = false, reverse: Bool = false
    ) -> CellStyle {
        CellStyle(
            foreground: colors ? foreground : .default, background: colors ? background : .default,
            bold: bold, dim: dim, reverse: reverse)
    }

    /// Green at 0 consecutive errors, yellow from 1, red from `tolerance - 1` (one more failure
    /// gets the client dropped).
    func errorLevelColor(_ errors: Int, tolerance: Int) -> Color {
        if errors <= 0 { return .green }
        return errors >= max(1, tolerance - 1) ? .red : .yellow
    }

    func kindColor(_ kind: LogKind) -> Color {
        switch kind {
        case .error, .offline: .red
        case .kick, .ban, .disconnect: .yellow
        case .connect, .online: .green
        case .broadcast, .broadcastTo: .cyan
        case .info: .default
        }
    }
}
