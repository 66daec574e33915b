// The floor of issue 15's comparison: the least an SSE broker built on SwiftNIO's HTTP/1 codecs
// does per publish and per delivery, batching as the broker does. The broker's own pipeline
// (HTTPResponseEncoder, HTTPRequestDecoder, HTTPServerPipelineHandler), one event loop:
//   GET /connect?id=X[&topic=T] -> 200 text/event-stream, written raw once the codecs are removed;
//                                  the channel kept under X (and under topic T)
//   POST /broadcast[?id=X|?type=T] -> `id: n\ndata: body\n\n` queued for X, for T's subscribers
//                                  or for everyone; 202 at once
// The events a loop turn queued are written by one task, each connection flushed once at the last
// event that reaches it (the broker's LoopFanout, without its gathering into one buffer, so on a
// saturated fan-out, several events per turn, the broker writes less than this does). No
// validation, limits, replay history, slow-client policy, metrics, audit or logging. With
// `--tls-cert PEM --tls-key PEM`, swift-nio-ssl's server handler in front, as the broker serves TLS,
// and ALPN: HTTP/1.1 as above, or h2, where GET /connect streams are subscribers (NIO's HTTP/2
// handler and multiplexer, a stream channel per subscriber, a stream's events of a turn in one DATA
// frame) and each connection's writes of a loop turn are gathered and flushed once (NIO flushes the
// connection at every stream's flush, and TLS makes a record of every write; the broker does the
// same). Run by scripts/bench-compare.sh as the "nio-floor" broker.
//   swift build -c release --package-path benchmarks/nio-floor && benchmarks/nio-floor/.build/release/NIOFloor --port 8090
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// One subscriber: a connection, or an HTTP/2 stream. Loop-confined.
final class Subscriber {
    let channel: any Channel
    let http2: Bool
    /// Written to since its last flush.
    var dirty = false

    init(channel: any Channel, http2: Bool) {
        self.channel = channel
        self.http2 = http2
    }

    /// HTTP/2: the turn's events for this stream, sent as one DATA frame when it is flushed (NIO's
    /// cost per frame is several times a write's, so this floor gathers where the broker does).
    private var gathered: ByteBuffer?

    func write(_ event: ByteBuffer, flush: Bool) {
        guard self.http2 else {
            if flush { self.channel.writeAndFlush(event, promise: nil) } else { self.channel.write(event, promise: nil) }
            return
        }
        if self.gathered == nil, flush {
            self.channel.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(event))), promise: nil)
            return
        }
        if self.gathered == nil { self.gathered = self.channel.allocator.buffer(capacity: 1024) }
        self.gathered!.writeImmutableBuffer(event)
        if flush { self.flush() }
    }

    func flush() {
        guard let gathered = self.gathered else { return self.channel.flush() }
        self.gathered = nil
        self.channel.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(gathered))), promise: nil)
    }

    /// Keeps the subscriber under `id` (and `topic`) until its channel closes.
    func register(id: String, topic: String?, in subscribers: Subscribers) {
        let key = ObjectIdentifier(self.channel)
        subscribers.byID[id] = self
        subscribers.all[key] = self
        if let topic { subscribers.byTopic[topic, default: [:]][key] = self }
        self.channel.closeFuture.assumeIsolated().whenComplete { _ in
            if subscribers.byID[id] === self { subscribers.byID[id] = nil }
            subscribers.all[key] = nil
            if let topic { subscribers.byTopic[topic]?[key] = nil }
        }
    }
}

/// The query parameters of a request target.
func parameters(of uri: String) -> [Substring: String] {
    var parameters: [Substring: String] = [:]
    for pair in uri.split(separator: "?", maxSplits: 1).dropFirst().first?.split(separator: "&") ?? [] {
        let parts = pair.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { parameters[parts[0]] = String(parts[1]) }
    }
    return parameters
}

/// Loop-confined (one event loop): the subscribers by id and by topic, the last event id, and the
/// events of the current turn.
final class Subscribers: @unchecked Sendable {
    var byID: [String: Subscriber] = [:]
    var all: [ObjectIdentifier: Subscriber] = [:]
    var byTopic: [String: [ObjectIdentifier: Subscriber]] = [:]
    var lastEventID: UInt64 = 0
    private var queue: [(event: ByteBuffer, to: [Subscriber])] = []
    private var written: [Subscriber] = []

    /// Queues `event`; the turn's first event schedules the task that writes them all.
    func enqueue(_ event: ByteBuffer, to subscribers: [Subscriber], on loop: any EventLoop) {
        if self.queue.isEmpty { loop.execute { self.drain() } }
        self.queue.append((event, subscribers))
    }

    /// Writes the queued events in order. The last one is flushed to each of its subscribers as it is
    /// written; a connection written to earlier and not by the last is flushed after it.
    private func drain() {
        let queue = self.queue
        self.queue.removeAll(keepingCapacity: true)
        for (index, item) in queue.enumerated() {
            let isLast = index == queue.count - 1
            for subscriber in item.to {
                if isLast {
                    subscriber.write(item.event, flush: true)
                    subscriber.dirty = false
                } else {
                    subscriber.write(item.event, flush: false)
                    if !subscriber.dirty {
                        subscriber.dirty = true
                        self.written.append(subscriber)
                    }
                }
            }
        }
        for subscriber in self.written where subscriber.dirty {
            subscriber.flush()
            subscriber.dirty = false
        }
        self.written.removeAll(keepingCapacity: true)
    }
}

final class FloorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let subscribers: Subscribers
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(subscribers: Subscribers) {
        self.subscribers = subscribers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var chunk):
            self.body.writeBuffer(&chunk)
        case .end:
            guard let head = self.head else { return }
            let parameters = parameters(of: head.uri)
            if head.method == .GET {
                self.subscribe(id: parameters["id"] ?? "", topic: parameters["topic"], context: context)
            } else {
                self.publish(to: parameters["id"], topic: parameters["type"], context: context)
            }
        }
    }

    private func subscribe(id: String, topic: String?, context: ChannelHandlerContext) {
        // The stream is raw bytes from here on, as in the broker.
        let pipeline = context.pipeline.syncOperations
        let codecs: [any RemovableChannelHandler] = [
            try! pipeline.handler(type: HTTPResponseEncoder.self),
            try! pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self),
            try! pipeline.handler(type: HTTPServerPipelineHandler.self),
        ]
        for handler in codecs { pipeline.removeHandler(handler, promise: nil) }
        pipeline.removeHandler(self, promise: nil)
        // A close-delimited response, its head written raw as the broker writes it (NIO's encoder
        // would announce chunked encoding).
        context.channel.writeAndFlush(
            ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: ok\n\n"),
            promise: nil
        )
        Subscriber(channel: context.channel, http2: false).register(id: id, topic: topic, in: self.subscribers)
    }

    private func publish(to id: String?, topic: String?, context: ChannelHandlerContext) {
        self.subscribers.lastEventID += 1
        let eventID = self.subscribers.lastEventID
        var event = context.channel.allocator.buffer(capacity: self.body.readableBytes + 32)
        event.writeString("id: \(eventID)\ndata: ")
        event.writeImmutableBuffer(self.body)
        event.writeString("\n\n")
        let recipients: [Subscriber]
        if let id {
            recipients = self.subscribers.byID[id].map { [$0] } ?? []
        } else if let topic {
            recipients = Array(self.subscribers.byTopic[topic]?.values ?? [:].values)
        } else {
            recipients = Array(self.subscribers.all.values)
        }
        self.subscribers.enqueue(event, to: recipients, on: context.eventLoop)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let answer = ByteBuffer(string: "{\"id\":\"\(eventID)\"}")
        headers.add(name: "Content-Length", value: String(answer.readableBytes))
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .accepted, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// An HTTP/2 stream: GET /connect?id=X[&topic=T] -> HEADERS 200 text/event-stream, then the
/// events as DATA frames; kept under X (and T). Publishes come over HTTP/1.1, as sse-bench sends them.
final class FloorStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let subscribers: Subscribers

    init(subscribers: Subscribers) {
        self.subscribers = subscribers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(let request) = self.unwrapInboundIn(data) else { return }
        let parameters = parameters(of: request.headers.first(name: ":path") ?? "")
        let head: HPACKHeaders = [":status": "200", "content-type": "text/event-stream", "cache-control": "no-cache"]
        context.write(self.wrapOutboundOut(.headers(.init(headers: head))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer(string: ": ok\n\n"))))), promise: nil)
        Subscriber(channel: context.channel, http2: true)
            .register(id: parameters["id"] ?? "", topic: parameters["topic"], in: self.subscribers)
    }
}

/// In front of the TLS handler on an h2 connection: the connection's writes of a loop turn gathered
/// into one buffer and flushed once, by a task behind the turn's. NIO's multiplexer flushes the
/// connection at every stream's flush, and writes two buffers per DATA frame, each its own TLS
/// record; without this, an event to a hundred streams is two hundred records and a hundred
/// `writev`s (measured: 5.4 times plain HTTP/1.1's CPU per event, against 1.3 with it).
final class TurnWriteHandler: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var pending: ByteBuffer?
    private var promises: [EventLoopPromise<Void>] = []
    private var scheduled = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = self.unwrapOutboundIn(data)
        if self.pending == nil {
            self.pending = context.channel.allocator.buffer(capacity: max(4096, buffer.readableBytes))
        }
        self.pending!.writeBuffer(&buffer)
        if let promise { self.promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !self.scheduled else { return }
        self.scheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.scheduled = false
            self.writePending(context: context)
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        self.writePending(context: context)
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let pending = self.pending else { return }
        self.pending = nil
        let promises = self.promises
        self.promises.removeAll()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(self.wrapOutboundOut(pending), promise: written)
        for promise in promises { written.futureResult.cascade(to: promise) }
    }
}

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap { Int($0) } ?? 8090
let tls: NIOSSLContext? =
    if let cert = option("--tls-cert"), let key = option("--tls-key") {
        try {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
            configuration.applicationProtocols = ["h2", "http/1.1"]
            return try NIOSSLContext(configuration: configuration)
        }()
    } else {
        nil
    }
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let subscribers = Subscribers()
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            // As the broker's ConnectionSetup builds it (no header validator, no error handler).
            @Sendable func http1(_ channel: any Channel) throws {
                try channel.pipeline.syncOperations.addHandlers(
                    HTTPResponseEncoder(),
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                    HTTPServerPipelineHandler(),
                    FloorHandler(subscribers: subscribers)
                )
            }
            guard let tls else { return try http1(channel) }
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
            try channel.pipeline.syncOperations.addHandler(
                ApplicationProtocolNegotiationHandler { result, channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .negotiated("h2") = result else { return try http1(channel) }
                        try channel.pipeline.syncOperations.addHandler(TurnWriteHandler())
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .server,
                            connectionConfiguration: .init(),
                            streamConfiguration: .init()
                        ) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                try stream.pipeline.syncOperations.addHandler(FloorStreamHandler(subscribers: subscribers))
                            }
                        }
                    }
                }
            )
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
// The line scripts/bench-lib.sh's start_console reads the port from.
print("listening on \(tls == nil ? "http" : "https")://127.0.0.1:\(server.localAddress!.port!)")
fflush(nil)  // every stream: stdout is a file here, fully buffered
try server.closeFuture.wait()
