import Foundation
import NIOCore
import NIOPosix

/// Where and how a storm reads how many subscribers the broker holds: one `GET` per reading, the
/// number found in the body. This broker: `/metrics` (Prometheus, `sse_clients_connected`) or
/// `/healthz` (JSON, `"clients"`); nchan: a `nchan_stub_status` location (`subscribers: N`).
struct CountSource: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var path: String
    /// The name the number follows; `nil`: the first of ``defaultKeys`` found.
    var key: String?

    static let defaultKeys = ["sse_clients_connected", "clients", "subscribers"]

    var description: String { "http://\(self.host):\(self.port)\(self.path)" }

    /// `http://127.0.0.1:PORT/path`, or just `/path` on the broker's own address.
    static func parse(_ text: String, host: String, port: Int, key: String?) throws -> CountSource {
        if text.hasPrefix("/") { return CountSource(host: host, port: port, path: text, key: key) }
        var rest = Substring(text)
        if rest.hasPrefix("http://") { rest = rest.dropFirst("http://".count) }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let (parsedHost, parsedPort) = try Endpoint.parseURL(String(rest[..<slash]))
        let path = slash < rest.endIndex ? String(rest[slash...]) : "/"
        return CountSource(host: parsedHost, port: parsedPort, path: path, key: key)
    }

    /// The count in a response body: the number after `key` (Prometheus `name{…} N`, JSON
    /// `"name":N`, or `name: N`). Lines such as `# TYPE name gauge` do not match.
    static func count(in body: String, key: String?) -> Int? {
        for candidate in key.map({ [$0] }) ?? self.defaultKeys {
            if let value = self.number(after: candidate, in: Array(body.utf8)) { return value }
        }
        return nil
    }

    private static func number(after key: String, in bytes: [UInt8]) -> Int? {
        let needle = Array(key.utf8)
        guard !needle.isEmpty, bytes.count >= needle.count else { return nil }
        var start = 0
        while start + needle.count <= bytes.count {
            defer { start += 1 }
            guard bytes[start] == needle[0], Array(bytes[start..<start + needle.count]) == needle else { continue }
            // Whole names only: not `xclients` or `clients_total`.
            if start > 0, Self.isNameByte(bytes[start - 1]) { continue }
            var index = start + needle.count
            if index < bytes.count, Self.isNameByte(bytes[index]) { continue }
            if index < bytes.count, bytes[index] == UInt8(ascii: "{") {  // Prometheus labels
                while index < bytes.count, bytes[index] != UInt8(ascii: "}") { index += 1 }
                index += 1
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") { index += 1 }
            while index < bytes.count, [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ":"), UInt8(ascii: "=")].contains(bytes[index]) {
                index += 1
            }
            var value = 0
            var digits = 0
            while index < bytes.count, bytes[index] &- 48 < 10, digits < 18 {
                value = value * 10 + Int(bytes[index] &- 48)
                digits += 1
                index += 1
            }
            if digits > 0 { return value }
        }
        return nil
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || (byte | 0x20) &- UInt8(ascii: "a") < 26 || byte &- 48 < 10
    }

    /// One reading (a fresh connection, `Connection: close`), or `nil` on any failure or after 2 s.
    func read(on loop: any EventLoop) async -> Int? {
        let promise = loop.makePromise(of: String.self)
        let request = ByteBuffer(
            string: "GET \(self.path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nAccept: */*\r\nConnection: close\r\nUser-Agent: sse-bench\r\n\r\n"
        )
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(OneShotGetHandler(request: request, done: promise))
                }
            }
            .connect(host: self.host, port: self.port)
        connect.whenFailure { promise.fail($0) }
        let timeout = loop.scheduleTask(in: .seconds(2)) {
            promise.fail(BenchError.timeout("GET \(self.path)"))
            connect.whenSuccess { $0.close(promise: nil) }
        }
        defer { timeout.cancel() }
        guard let body = try? await promise.futureResult.get() else { return nil }
        return Self.count(in: body, key: self.key)
    }

    /// Reads every `interval` seconds until `condition` holds for a reading, for at most `timeout` seconds.
    /// - Returns: when it first held (monotonic ns; `nil`: never), the last reading and how many readings failed.
    func poll(
        on loop: any EventLoop, interval: Double = 0.01, timeout: Double, until condition: (Int) -> Bool
    ) async -> (heldAt: UInt64?, last: Int?, failed: Int) {
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        var last: Int?
        var failed = 0
        while true {
            if let value = await self.read(on: loop) {
                last = value
                if condition(value) { return (monotonicNanos(), value, failed) }
            } else {
                failed += 1
            }
            if monotonicNanos() >= deadline { return (nil, last, failed) }
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        }
    }
}

/// Sends one request and completes with the body of the response (at its end, or at the close).
private final class OneShotGetHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: ByteBuffer
    private let done: EventLoopPromise<String>
    private var reader = ResponseReader()
    private var body: [UInt8] = []
    private var status = 0

    init(request: ByteBuffer, done: EventLoopPromise<String>) {
        self.request = request
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(self.request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        var ended = false
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(ResponseReader.Failure) in
                try self.reader.feed(
                    bytes, onHead: { self.status = $0 }, onBody: { self.body.append(contentsOf: $0) }, onEnd: { ended = true }
                )
            }
        } catch {
            self.done.fail(BenchError.malformedResponse)
            context.close(promise: nil)
            return
        }
        if self.body.count > 1 << 20 {
            self.done.fail(BenchError.malformedResponse)
            context.close(promise: nil)
        } else if ended {
            self.finish()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A close-delimited body ends here.
        if self.status != 0 { self.finish() } else { self.done.fail(BenchError.closedBeforeReady) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.done.fail(error)
        context.close(promise: nil)
    }

    private func finish() {
        if (200..<300).contains(self.status) {
            self.done.succeed(String(decoding: self.body, as: UTF8.self))
        } else {
            self.done.fail(BenchError.subscribeRefused(status: self.status))
        }
    }
}
