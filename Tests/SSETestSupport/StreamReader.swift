import SSEClient

/// A subscriber's stream ended before the message a test waited for.
public enum StreamEnded: Error {
    case ended
}

/// Reads a subscriber's stream message by message.
public struct StreamReader {
    public let client: SSEClient
    private var iterator: AsyncStream<SSEMessage>.Iterator

    public init(_ client: SSEClient) {
        self.client = client
        self.iterator = client.messages.makeAsyncIterator()
    }

    /// The next message; throws if the stream ended.
    public mutating func next() async throws -> SSEMessage {
        guard let message = await self.iterator.next() else { throw StreamEnded.ended }
        return message
    }

    /// The next event, skipping comments and retry hints.
    public mutating func nextEvent() async throws -> ServerSentEvent {
        while true {
            if case .event(let event) = try await self.next() { return event }
        }
    }

    /// The next `count` events' data.
    public mutating func data(_ count: Int) async throws -> [String] {
        var result: [String] = []
        for _ in 0..<count { result.append(try await self.nextEvent().data) }
        return result
    }

    /// Reads until the server closes the stream; returns the events seen on the way.
    public mutating func untilEnd() async -> [SSEMessage] {
        var rest: [SSEMessage] = []
        while let message = await self.iterator.next() { rest.append(message) }
        return rest
    }
}
