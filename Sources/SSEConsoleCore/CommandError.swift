/// A command line that could not be parsed; `message` is shown to the user as is.
public struct CommandError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
