import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A real broker and server on an ephemeral 127.0.0.1 port.
struct TestServer {
    let broker: Broker
    let server: BrokerServer
    let port: Int

    static func with(
        _ configuration: BrokerConfiguration = .predictable,
        extraRoutes: [HTTPRoute] = [],
        security: ServerSecurity = ServerSecurity(),
        http2: HTTP2Options = HTTP2Options(),
        logger: Logger = quietLogger,
        _ body: (TestServer) async throws -> Void
    ) async throws {
        let broker = try Broker(configuration: configuration, logger: logger)
        let server = BrokerServer(
            broker: broker,
            host: "127.0.0.1",
            port: 0,
            extraRoutes: extraRoutes,
            security: security,
            group: MultiThreadedEventLoopGroup.singleton,
            http2: http2,
            logger: logger
        )
        let address = try await server.start()
        let testServer = TestServer(broker: broker, server: server, port: try #require(address.port))
        do {
            try await body(testServer)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    func subscribe(
        _ path: String = "/connect",
        headers: HTTPHeaders = [:],
        receiveBufferSize: Int? = nil,
        autoRead: Bool = true
    ) async throws -> SSEClient {
        try await SSEClient.connect(
            host: "127.0.0.1",
            port: self.port,
            path: path,
            headers: headers,
            receiveBufferSize: receiveBufferSize,
            autoRead: autoRead
        )
    }

    /// Subscribes and waits for the stream's preamble, so the client is registered on return.
    func connectedReader(_ path: String = "/connect", headers: HTTPHeaders = [:]) async throws -> StreamReader {
        let client = try await self.subscribe(path, headers: headers)
        #expect(client.status == .ok)
        var reader = StreamReader(client)
        let first = try await reader.next()
        guard case .comment(let text) = first, text.hasPrefix("connected ") else {
            Issue.record("expected the connected comment first, got \(String(describing: first))")
            return reader
        }
        return reader
    }

    /// Shutdown's promise to a subscriber: every event accepted before, in order, then the farewell.
    /// Reads each stream to its end.
    static func expectEventsThenFarewell(_ readers: inout [StreamReader], data expected: [String]) async {
        for index in readers.indices {
            let rest = await readers[index].untilEnd()
            let data = rest.compactMap { message -> String? in
                if case .event(let event) = message { return event.data }
                return nil
            }
            #expect(data == expected)
            #expect(rest.last == .comment("broker shutting down"))
        }
    }

    func publisher() async throws -> HTTPClientConnection {
        try await HTTPClientConnection.connect(host: "127.0.0.1", port: self.port)
    }

    /// A raw TCP connection, for requests an HTTP client would not send.
    func raw() async throws -> RawConnection {
        try await RawConnection.connect(port: self.port)
    }

    /// A one-off request on a fresh connection.
    func request(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: HTTPHeaders = [:]) async throws -> HTTPClientResponse {
        let connection = try await self.publisher()
        defer { Task { await connection.close() } }
        return try await connection.send(method, uri, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }
}
