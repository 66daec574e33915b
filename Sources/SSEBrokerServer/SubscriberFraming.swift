import NIOCore
import NIOHTTP1
import SSEBroker

/// How an event stream is framed on its channel, for ``SubscriberChannelHandler``: the one
/// difference between a subscriber on an HTTP/1.1 connection and one on an HTTP/2 stream.
protocol SubscriberFraming {
    associatedtype InboundIn
    associatedtype OutboundOut
    /// For ``ClientInfo/httpVersion``.
    static var httpVersion: String { get }
    /// Whether the channel answers `bufferedWritableBytes` (a socket does, an HTTP/2 stream does not).
    static var channelKnowsBacklog: Bool { get }
    /// The `200` response head.
    static func head(clientID: String, headers: HTTPHeaders) -> OutboundOut
    /// Event bytes, shared by every subscriber: wrapped, never copied.
    static func body(_ buffer: ByteBuffer) -> OutboundOut
}

/// HTTP/1.1 with the codecs taken out: the head and the events are raw bytes on the socket, and the
/// body ends when the connection closes (no chunked framing, so one encoded event serves everyone).
enum HTTP1Framing: SubscriberFraming {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static var httpVersion: String { "HTTP/1.1" }
    static var channelKnowsBacklog: Bool { true }

    static func head(clientID: String, headers: HTTPHeaders) -> ByteBuffer {
        ConnectRequest.responseHead(clientID: clientID, extraHeaders: headers)
    }

    static func body(_ buffer: ByteBuffer) -> ByteBuffer { buffer }
}

/// An HTTP/2 stream, through the stream's `HTTP2FramePayloadToHTTP1ServerCodec` (which cannot be
/// removed): the head becomes a HEADERS frame, each event a DATA frame carrying the shared buffer.
enum HTTP2Framing: SubscriberFraming {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static var httpVersion: String { "h2" }
    static var channelKnowsBacklog: Bool { false }

    static func head(clientID: String, headers: HTTPHeaders) -> HTTPServerResponsePart {
        let fields = ConnectRequest.responseHeaders(clientID: clientID, extraHeaders: headers)
        return .head(HTTPResponseHead(version: .http2, status: .ok, headers: HTTPHeaders(fields.map { ($0.name, $0.value) })))
    }

    static func body(_ buffer: ByteBuffer) -> HTTPServerResponsePart { .body(.byteBuffer(buffer)) }
}
