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
    /// Called by the broker once the connection is registered, before it writes the first byte of
    /// the stream: the place to send a response head that says how the resume went (the
    /// `SSE-Replay` header, ``ReplayStatus/headerValue``). `replay` is `nil` for a connection that
    /// did not resume. The default does nothing (for transports that sent their head already).
    public func streamWillStart(replay: ReplayStatus?) {}

    public var httpVersion: String { "HTTP/1.1" }
}
