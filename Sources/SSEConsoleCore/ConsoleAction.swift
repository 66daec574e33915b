/// What the app must do after a key press.
public enum ConsoleAction: Sendable, Hashable {
    /// Run a parsed command. UI-only commands can be handed to `ConsoleState.applyLocal(_:)`.
    case execute(Command)
    /// Leave the console (Ctrl-C, `q` in navigate mode).
    case quit
    /// Clear and repaint the whole terminal (resize, Ctrl-L).
    case redraw
    /// The event detail view was opened on this event: look its data up and pass it to
    /// `ConsoleState.setEventData(_:totalBytes:)`.
    case inspectEvent(eventID: UInt64)
}
