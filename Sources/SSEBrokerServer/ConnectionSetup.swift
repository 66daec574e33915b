import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import SSEBroker

/// Builds the pipeline of an accepted connection once its protocol is known: HTTP/1.1, or HTTP/2
/// with one ``BrokerHTTPHandler`` per stream. Chosen by ALPN on https, by the connection preface
/// with h2c (``CleartextProtocolSniffer``), else HTTP/1.1.
struct ConnectionSetup: Sendable {
    let broker: Broker
    let routes: BrokerRoutes
    let extraRoutes: [HTTPRoute]
    let security: ServerSecurity
    let admission: AdmissionControl
    let idempotency: IdempotencyStore
    let http2: HTTP2Options
    let logger: Logger

    /// An HTTP/2 stream's outbound buffer, above which the stream channel turns unwritable (as a
    /// socket channel does at NIO's default 64 KiB): the signal the slow-client policy reads.
    static let streamHighWatermark = 64 << 10
    static let streamLowWatermark = 32 << 10

    private func makeHandler(framing: BrokerHTTPHandler.Framing) -> BrokerHTTPHandler {
        BrokerHTTPHandler(
            broker: self.broker, routes: self.routes, extraRoutes: self.extraRoutes, security: self.security,
            admission: self.admission, idempotency: self.idempotency, logger: self.logger, framing: framing
        )
    }

    /// HTTP/1.1: NIO's codecs, then its pipelining handler (pipelined requests wait there until the
    /// one before has its response), then the broker's handler.
    func configureHTTP1(_ channel: any Channel) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        // The request line counts against the header limit too (NIO counts the URL with the headers).
        limits.maxHeaderListSize = self.security.limits.maxHeaderBytes
        limits.maxHeaderFieldSize = self.security.limits.maxHeaderBytes
        try channel.pipeline.syncOperations.addHandlers(
            HTTPResponseEncoder(),
            ByteToMessageHandler(
                HTTPRequestDecoder(
                    leftOverBytesStrategy: .dropBytes,
                    informationalResponseStrategy: .drop,
                    limitConfiguration: limits
                )
            ),
            HTTPServerPipelineHandler(),
            self.makeHandler(framing: .http1)
        )
    }

    /// HTTP/2: NIO's connection handler with its stream multiplexer, each stream an
    /// HTTP/1-shaped channel (`HTTP2FramePayloadToHTTP1ServerCodec`) with its own broker handler;
    /// then NIO's connection manager, which answers a quiesce (the server's shutdown) with `GOAWAY`
    /// and closes the connection when its last stream has, and closes connections idle (no stream)
    /// for ``ServerLimits/headerTimeout``, as an idle HTTP/1.1 keep-alive connection is. The
    /// connection's flushes wait for the end of the loop's turn (``WriteCoalescingHandler``), so
    /// that an event to a hundred streams of one connection is one `writev`, not a hundred.
    ///
    /// The abuse limits are NIO's, set from ``HTTP2Options`` and ``ServerLimits``: concurrent streams,
    /// header list size (`SETTINGS_MAX_HEADER_LIST_SIZE`, enforced by the HPACK decoder), resets per
    /// 30 s (rapid reset), and NIO's own bounds on CONTINUATION frames, buffered control frames and
    /// protocol "glitches".
    func configureHTTP2(_ channel: any Channel) throws {
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(
                maxIdleTime: TimeAmount(self.security.limits.headerTimeout),
                maxAge: nil,
                maxGraceTime: nil,
                keepalive: nil
            )
        )
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: self.http2.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: self.security.limits.maxHeaderBytes),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.outboundBufferSizeHighWatermark = Self.streamHighWatermark
        stream.outboundBufferSizeLowWatermark = Self.streamLowWatermark
        stream.streamResetFrameRateLimit.maximumCount = self.http2.maxStreamResets
        let setup = self
        let subscribers = HTTP2SubscriberCount()
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: connection,
            streamConfiguration: stream,
            streamDelegate: management.http2StreamDelegate
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                try streamChannel.pipeline.syncOperations.addHandlers(
                    HTTP2FramePayloadToHTTP1ServerCodec(),
                    setup.makeHandler(framing: .http2(subscribers))
                )
            }
        }
        try channel.pipeline.syncOperations.addHandlers(management, HTTP2ConnectionErrorHandler(logger: self.logger))
        // One connection flush per loop turn, not one per stream written (see WriteCoalescingHandler).
        if let coalescer = try? channel.pipeline.syncOperations.handler(type: WriteCoalescingHandler.self) {
            coalescer.defersFlushes = true  // https: in front of the TLS handler since the connection was accepted
        } else {
            try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler(defersFlushes: true), position: .first)
        }
    }

    /// Whether `channel` speaks HTTP/2.
    static func isHTTP2(_ channel: any Channel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)) != nil
    }
}

/// The subscriber streams open on one HTTP/2 connection, for a stream's share of the connection's
/// backlog (``SubscriberChannelHandler/bufferedBytes``).
///
/// Loop-confined: a connection's streams all run on its loop, and only they touch it.
final class HTTP2SubscriberCount: @unchecked Sendable {
    var value = 0
}

/// The last handler of an HTTP/2 connection: a connection error (a rapid-reset flood, a header
/// block over the limit, a protocol violation) has had its `GOAWAY` sent by NIO's handler; this
/// logs it and closes the connection, which closes its streams (NIO leaves the closing to us).
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        BrokerHTTPHandler.log(error, remote: context.channel.remoteAddress, to: self.logger)
        context.close(promise: nil)
    }
}
