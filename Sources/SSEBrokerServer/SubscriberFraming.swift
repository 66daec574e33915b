import HTTPTypes
import NIOCore
import NIOHPACK
import NIOHTTP2
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
    /// Whether the events written between two flushes go out as one body part. On HTTP/2 each
    /// DATA frame costs far more than its bytes (stream lookups, flow control, frame encoding:
    /// several microseconds in NIO), so a burst is worth one copy into one frame; on HTTP/1.1 the
    /// shared buffers go out as they are, gathered by the socket's vector write.
    static var coalescesWrites: Bool { get }
    /// The `200` response head.
    static func head(clientID: String, headers: HTTPFields) -> OutboundOut
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
    static var coalescesWrites: Bool { false }

    /// The response head as raw bytes. The body is delimited by the connection's close: no chunked
    /// framing, so each event is written as it is encoded, shared by every client.
    static func head(clientID: String, headers: HTTPFields) -> ByteBuffer {
        var head = ByteBuffer()
        head.writeString("HTTP/1.1 200 OK\r\n")
        for field in ConnectRequest.responseHeaders(clientID: clientID, extraHeaders: headers) {
            head.writeString("\(field.name.rawName): \(field.value)\r\n")
        }
        head.writeString("Connection: close\r\n\r\n")
        return head
    }

    static func body(_ buffer: ByteBuffer) -> ByteBuffer { buffer }
}

/// An HTTP/2 stream, written in frame payloads by a handler put in front of the stream's
/// `HTTP2FramePayloadToHTTP1ServerCodec` (which cannot be removed, and is idle from then on): the
/// head is one HEADERS frame, each event one DATA frame carrying the shared buffer — no conversion
/// through HTTP/1 parts per event.
enum HTTP2Framing: SubscriberFraming {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    static var httpVersion: String { "h2" }
    static var channelKnowsBacklog: Bool { false }
    static var coalescesWrites: Bool { true }

    static func head(clientID: String, headers: HTTPFields) -> HTTP2Frame.FramePayload {
        var fields = HPACKHeaders([(":status", "200")])
        for field in ConnectRequest.responseHeaders(clientID: clientID, extraHeaders: headers) {
            fields.add(name: field.name.canonicalName, value: field.value)
        }
        return .headers(.init(headers: fields))
    }

    static func body(_ buffer: ByteBuffer) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(buffer)))
    }
}
