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
    /// Bytes queued and not yet taken by the socket.
    var bufferedBytes: Int { get }
}
