import NIOCore
import SSEBroker
import Synchronization

/// A subscriber that takes every write at once and counts the events. With `followUp`, each event
/// written to it queues a task on its loop that works that long: the work a fan-out turn causes
/// after it.
public final class SinkTransport: SubscriberTransport, @unchecked Sendable {
    public let eventLoop: any EventLoop
    /// The events written to it so far.
    public let events = Atomic<Int>(0)
    /// Its subscription, told when it closes. Set on ``eventLoop``.
    public var subscription: Subscription?
    private let followUp: TimeAmount?

    public init(eventLoop: any EventLoop, followUp: TimeAmount? = nil) {
        self.eventLoop = eventLoop
        self.followUp = followUp
    }

    public func write(_ buffer: ByteBuffer) {
        guard buffer.readableBytesView.first == UInt8(ascii: "d") else { return }  // `data:`: an event
        self.events.add(1, ordering: .relaxed)
        if let followUp = self.followUp {
            self.eventLoop.execute {
                let end = NIODeadline.now() + followUp
                while NIODeadline.now() < end {}
            }
        }
    }

    public func flush() {}

    public func close() {
        self.subscription?.transportClosed()
    }

    public var bufferedBytes: Int { 0 }
}
