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
// `--tls-cert PEM --tls-key PEM`, swift-nio-ssl's server handler in front, as the broker serves TLS
// (HTTP/1.1). Run by scripts/bench-compare.sh as the "nio-floor" broker.
//   swift build -c release --package-path benchmarks/nio-floor && benchmarks/nio-floor/.build/release/NIOFloor --port 8090
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One subscriber connection. Loop-confined.
final class Subscriber {
    let channel: any Channel
    /// Written to since its last flush.
    var dirty = false

    init(channel: any Channel) {
        self.channel = channel
    }
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
                    subscriber.channel.writeAndFlush(item.event, promise: nil)
                    subscriber.dirty = false
                } else {
                    subscriber.channel.write(item.event, promise: nil)
                    if !subscriber.dirty {
                        subscriber.dirty = true
                        self.written.append(subscriber)
                    }
                }
            }
        }
        for subscriber in self.written where subscriber.dirty {
            subscriber.channel.flush()
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
            var parameters: [Substring: String] = [:]
            for pair in head.uri.split(separator: "?", maxSplits: 1).dropFirst().first?.split(separator: "&") ?? [] {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { parameters[parts[0]] = String(parts[1]) }
            }
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
        let channel = context.channel
        let subscribers = self.subscribers
        let subscriber = Subscriber(channel: channel)
        subscribers.byID[id] = subscriber
        subscribers.all[ObjectIdentifier(channel)] = subscriber
        if let topic { subscribers.byTopic[topic, default: [:]][ObjectIdentifier(channel)] = subscriber }
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            if subscribers.byID[id] === subscriber { subscribers.byID[id] = nil }
            subscribers.all[ObjectIdentifier(channel)] = nil
            if let topic { subscribers.byTopic[topic]?[ObjectIdentifier(channel)] = nil }
        }
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

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap { Int($0) } ?? 8090
let tls: NIOSSLContext? =
    if let cert = option("--tls-cert"), let key = option("--tls-key") {
        try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
        )
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
            if let tls {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
            }
            try channel.pipeline.syncOperations.addHandlers(
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPServerPipelineHandler(),
                FloorHandler(subscribers: subscribers)
            )
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
// The line scripts/bench-lib.sh's start_console reads the port from.
print("listening on \(tls == nil ? "http" : "https")://127.0.0.1:\(server.localAddress!.port!)")
fflush(nil)  // every stream: stdout is a file here, fully buffered
try server.closeFuture.wait()
