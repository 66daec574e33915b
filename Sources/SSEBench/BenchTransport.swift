import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// How the bench's connections reach the broker: plain or TLS, and subscribers over HTTP/1.1 (one
/// connection each) or HTTP/2 (many streams per connection). Publishers always speak HTTP/1.1.
struct BenchTransport: Sendable {
    /// TLS for subscribers (ALPN `h2` or `http/1.1`) and publishers (`http/1.1`); certificates are
    /// not verified: the broker is on loopback.
    private var subscriberTLS: NIOSSLContext?
    private var publisherTLS: NIOSSLContext?
    /// Subscriber streams per HTTP/2 connection; `nil`: HTTP/1.1 subscribers.
    var http2StreamsPerConnection: Int?

    static let plain = BenchTransport(subscriberTLS: nil, publisherTLS: nil, http2StreamsPerConnection: nil)

    enum Role {
        case subscriber, publisher
    }

    init(tls: Bool, http2StreamsPerConnection: Int?) throws {
        self.http2StreamsPerConnection = http2StreamsPerConnection
        if tls {
            self.subscriberTLS = try Self.tlsContext(alpn: [http2StreamsPerConnection == nil ? "http/1.1" : "h2"])
            self.publisherTLS = try Self.tlsContext(alpn: ["http/1.1"])
        }
    }

    private init(subscriberTLS: NIOSSLContext?, publisherTLS: NIOSSLContext?, http2StreamsPerConnection: Int?) {
        self.subscriberTLS = subscriberTLS
        self.publisherTLS = publisherTLS
        self.http2StreamsPerConnection = http2StreamsPerConnection
    }

    var isTLS: Bool { self.subscriberTLS != nil }

    private static func tlsContext(alpn: [String]) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.applicationProtocols = alpn
        return try NIOSSLContext(configuration: configuration)
    }

    /// Adds the TLS handler, if any, to a new connection's pipeline.
    func addTLS(to channel: any Channel, for role: Role) throws {
        if let tls = role == .subscriber ? self.subscriberTLS : self.publisherTLS {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
        }
    }

    /// An HTTP/2 client connection's settings: windows large enough that fan-out is never
    /// throttled by the reader's flow control (Chromium uses 6 MiB per stream, 15 MiB per connection).
    static func http2Configuration() -> NIOHTTP2Handler.Configuration {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
        ]
        configuration.connection.targetWindowSize = 16 << 20
        configuration.stream.targetWindowSize = 1 << 20
        return configuration
    }
}

/// Lets ``SubscriberHandler``, which speaks raw HTTP/1.1 bytes, run on an HTTP/2 stream (behind
/// `HTTP2FramePayloadToHTTP1ClientCodec`): its request bytes become a request head, the response
/// head becomes a status line, and the body passes through as it came (close-delimited).
final class RawHTTP1OverHTTP2Adapter: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTPClientRequestPart

    private let authority: String

    init(authority: String) {
        self.authority = authority
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            context.fireChannelRead(self.wrapInboundOut(ByteBuffer(string: "HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n\r\n")))
        case .body(let body):
            context.fireChannelRead(self.wrapInboundOut(body))
        case .end:
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The request line of the raw request: `GET <path> HTTP/1.1`.
        let request = self.unwrapOutboundIn(data)
        let line = request.getString(at: request.readerIndex, length: request.readableBytes)?.split(separator: "\r\n").first ?? ""
        let parts = line.split(separator: " ")
        let path = parts.count >= 2 ? String(parts[1]) : "/"
        var headers = HTTPHeaders()
        headers.add(name: "host", value: self.authority)
        headers.add(name: "accept", value: "text/event-stream")
        headers.add(name: "user-agent", value: "sse-bench")
        context.write(self.wrapOutboundOut(.head(HTTPRequestHead(version: .http2, method: .GET, uri: path, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.end(nil)), promise: promise)
    }
}
