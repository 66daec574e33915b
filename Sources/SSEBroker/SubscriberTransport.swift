import NIOCore

/// The byte stream behind one subscriber: what the broker writes an SSE stream into.
///
/// The HTTP server implements it over a NIO `Channel`; other servers can implement it to mount
/// the broker. Every member is called on ``eventLoop`` only, so implementations need no locks.
/// The transport reports back through ``Subscription/writabilityChanged(isWritable:)`` and
/// ``Subscription/transportClosed()``.
public protocol SubscriberTransport: AnyObject {
    /// The loop that owns the connection.
    var eventLoop: any EventLoop { get }
    /// Queues bytes; they are sent at the next ``flush()``.
    func write(_ buffer: ByteBuffer)
    /// Sends what was queued.
    func flush()
    /// Queues bytes and sends everything queued: ``write(_:)`` then ``flush()``, which the default
    /// does. The fan-out calls it for a connection's last event of a loop turn, its commonest write
    /// (an event for a few subscribers of a topic, or for one client): a transport can do it in one
    /// step (the NIO server passes the event down its pipeline once, not twice).
    func writeAndFlush(_ buffer: ByteBuffer)
    /// Closes the connection (the socket really closes); queued bytes are discarded.
    func close()
    /// Bytes queued and not yet taken by the socket. A transport that cannot tell should answer
    /// `Int.max`: the slow-client policy then errs on the safe side.
    var bufferedBytes: Int { get }
    /// See the extension's default.
    func streamWillStart(replay: ReplayStatus?)
    /// The protocol the stream is served over, for ``ClientInfo/httpVersion``; `HTTP/1.1` by default.
    var httpVersion: String { get }
}

extension SubscriberTransport {
    public func writeAndFlush(_ buffer: ByteBuffer) {
        self.write(buffer)
        self.flush()
    }

    /// Called by the broker once the connection is registered, before it writes the first byte of
    /// the stream: the place to send a response head that says how the resume went (the
    /// `SSE-Replay` header, ``ReplayStatus/headerValue``). `replay` is `nil` for a connection that
    /// did not resume. The default does nothing (for transports that sent their head already).
    public func streamWillStart(replay: ReplayStatus?) {}

    public var httpVersion: String { "HTTP/1.1" }
}
