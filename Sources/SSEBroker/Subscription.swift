import Foundation
import NIOCore
import Synchronization

/// One subscriber connection as the broker sees it.
///
/// Created by ``Broker/subscribe(clientID:lastEventID:topics:remoteAddress:userAgent:transport:)`` on the
/// transport's event loop. Its delivery state is confined to that loop (the broker only touches it
/// from tasks it runs there); the counters a snapshot reads are atomics, so ``Broker/clients`` never
/// has to hop to a loop or take a lock per connection.
public final class Subscription: @unchecked Sendable {
    /// Unique per connection.
    public let connectionID: UInt64
    /// The client id; several connections may share it.
    public let clientID: String
    let remoteAddress: String?
    let userAgent: String?
    /// The protocol it came over (``SubscriberTransport/httpVersion``).
    let httpVersion: String
    let connectedAt: Date
    /// The loop that owns the connection.
    public let eventLoop: any EventLoop
    /// The topics it subscribed to; ``TopicFilter/everything`` when it asked for none.
    public let topics: TopicFilter
    let fanout: LoopFanout

    /// Position in its loop's subscriber list (``LoopFanout``); -1 when not in it. Loop-confined.
    var slot = -1
    /// Position in its loop's list of unfiltered subscribers, or of subscribers with a pattern. Loop-confined.
    var groupSlot = -1
    /// For a subscriber with exact topics only: its position in its loop's list for each of them,
    /// in the order of `topics.topics`. Loop-confined.
    var topicSlots: [Int] = []

    // Loop-confined delivery state.
    private var transport: (any SubscriberTransport)?
    private var unwritableSince: NIODeadline?
    /// Events up to this id are skipped: they were published before the connection registered (so
    /// they are in its replay, or not for it), though their delivery may still be queued on the
    /// loop. In cluster mode also what the client resumed from: it may resume on a node that has
    /// not yet delivered what another node already sent it. Set once, before the first delivery.
    var skipThrough: UInt64 = 0
    private var closeReason: DisconnectReason?
    private(set) var isClosed = false
    var needsFlush = false
    private var eventsSent = 0
    private var bytesSent = 0
    private var consecutiveErrors = 0
    private var totalErrors = 0
    private weak var broker: Broker?

    // Mirrors of the counters for snapshots from any thread. Written with plain relaxed stores by the
    // loop (no read-modify-write on the hot path).
    private let publishedEventsSent = Atomic<Int>(0)
    private let publishedBytesSent = Atomic<Int>(0)
    private let publishedConsecutiveErrors = Atomic<Int>(0)
    private let publishedTotalErrors = Atomic<Int>(0)
    private let publishedBacklog = Atomic<Int>(0)
    /// What an operator inspecting this connection sees beyond the counters (resume, token, recent
    /// misses), behind a pthread mutex (``Locked``, which ThreadSanitizer sees, unlike
    /// `Synchronization.Mutex`): about 100 bytes per connection, and the delivery path touches it
    /// only when an event is dropped for this connection (never per written event).
    private let diagnostics = Locked<Diagnostics?>(nil)

    /// How many recent misses ``ClientInfo/recentErrors`` keeps.
    public static let recentErrorLimit = 8

    /// Only touched under ``diagnostics``'s lock.
    private final class Diagnostics: @unchecked Sendable {
        var resumedFrom: String?
        var replayedEvents = 0
        var tokenSubject: String?
        var tokenExpiresAt: Date?
        var recentErrors: [ClientError] = []
    }

    init(
        connectionID: UInt64,
        clientID: String,
        remoteAddress: String?,
        userAgent: String?,
        topics: TopicFilter,
        transport: any SubscriberTransport,
        fanout: LoopFanout,
        broker: Broker
    ) {
        self.topics = topics
        self.connectionID = connectionID
        self.clientID = clientID
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.httpVersion = transport.httpVersion
        self.connectedAt = Date()
        self.eventLoop = transport.eventLoop
        self.transport = transport
        self.fanout = fanout
        self.broker = broker
    }

    // MARK: Called by the transport (on its event loop)

    /// Tell the broker the socket stopped (`false`) or resumed (`true`) accepting data.
    public func writabilityChanged(isWritable: Bool) {
        self.eventLoop.assertInEventLoop()
        if isWritable {
            self.unwritableSince = nil
            self.publishedBacklog.store(0, ordering: .relaxed)
        } else if self.unwritableSince == nil {
            self.unwritableSince = .now()
        }
    }

    /// Tell the broker the connection is gone. Idempotent.
    public func transportClosed() {
        self.eventLoop.assertInEventLoop()
        guard self.transport != nil else { return }
        self.isClosed = true
        self.transport = nil  // breaks the transport <-> subscription cycle
        self.broker?.remove(self, reason: self.closeReason ?? .closed)
    }

    // MARK: Driven by the broker (on the event loop)

    enum Offer {
        case written
        case missed
        case skipped
    }

    /// Writes `buffer` unless the policy says this connection cannot take it; then counts a miss
    /// and closes the connection at the tolerance. `isEvent` is false for heartbeats, which are
    /// subject to the same policy (so a stalled idle client is found) but not counted as events.
    /// `flushing`: sent at once with what was queued before it (the flush may close the connection).
    @inline(__always)
    func offer(
        _ buffer: ByteBuffer,
        eventID: UInt64,
        isEvent: Bool,
        policy: TolerancePolicy,
        flushing: Bool = false
    ) -> Offer {
        guard !self.isClosed, let transport = self.transport, eventID > self.skipThrough || !isEvent else {
            return .skipped
        }
        if let since = self.unwritableSince {
            let backlog = transport.bufferedBytes
            self.publishedBacklog.store(backlog, ordering: .relaxed)
            let waited = NIODeadline.now() - since
            if !policy.mayQueue(
                unwritableFor: Duration(waited),
                backlogBytes: backlog,
                size: buffer.readableBytes
            ) {
                self.consecutiveErrors += 1
                self.totalErrors += 1
                self.publishedConsecutiveErrors.store(self.consecutiveErrors, ordering: .relaxed)
                self.publishedTotalErrors.store(self.totalErrors, ordering: .relaxed)
                self.recordError(
                    ClientError(
                        at: Date(), eventID: isEvent && eventID != .max ? eventID : nil,
                        unwritableFor: Duration(waited), backlogBytes: backlog,
                        eventBytes: buffer.readableBytes, consecutive: self.consecutiveErrors
                    )
                )
                if policy.mustDisconnect(consecutiveErrors: self.consecutiveErrors) {
                    self.close(reason: .overTolerance)
                }
                return .missed
            }
        }
        if isEvent {
            self.eventsSent += 1
            self.bytesSent += buffer.readableBytes
            self.publishedEventsSent.store(self.eventsSent, ordering: .relaxed)
            self.publishedBytesSent.store(self.bytesSent, ordering: .relaxed)
        }
        if self.consecutiveErrors != 0 {
            self.consecutiveErrors = 0
            self.publishedConsecutiveErrors.store(0, ordering: .relaxed)
        }
        if flushing {
            self.needsFlush = false  // off the turn's flushes, if earlier events put it there
            transport.writeAndFlush(buffer)
        } else {
            transport.write(buffer)
        }
        return .written
    }

    /// Writes the preamble, the announcement of a gap (if any) and the replayed events, then
    /// flushes: the first bytes of the stream.
    func start(preamble: ByteBuffer, gap: ByteBuffer?, replay: [ByteBuffer], policy: TolerancePolicy) {
        guard let transport = self.transport else { return }
        transport.write(preamble)
        if let gap {
            transport.write(gap)
        }
        for event in replay {
            _ = self.offer(event, eventID: .max, isEvent: true, policy: policy)
        }
        transport.flush()
    }

    func flush() {
        self.needsFlush = false
        self.transport?.flush()
    }

    /// Ends this one connection for `reason` (such as ``DisconnectReason/expired``), after a last
    /// comment telling the client why. Call it on ``eventLoop``. Idempotent.
    public func disconnect(reason: DisconnectReason, comment: String? = nil) {
        self.eventLoop.assertInEventLoop()
        self.close(reason: reason, farewell: comment.map(EventEncoder.comment))
    }

    /// Closes the connection, remembering why. The broker removes it when the transport reports the close.
    func close(reason: DisconnectReason, farewell: ByteBuffer? = nil) {
        guard !self.isClosed, let transport = self.transport else { return }
        self.isClosed = true
        self.closeReason = reason
        if let farewell {
            transport.write(farewell)
            transport.flush()
        }
        transport.close()
    }

    /// Records the subscriber token the connection was admitted with, for the console's client
    /// detail. The server calls it once, right after ``Broker/subscribe(clientID:lastEventID:topics:remoteAddress:userAgent:transport:)``.
    public func recordToken(subject: String, expiresAt: Date?) {
        self.withDiagnostics { diagnostics in
            diagnostics.tokenSubject = subject
            diagnostics.tokenExpiresAt = expiresAt
        }
    }

    /// Called by the broker at registration, before the connection is visible to anyone.
    func recordResume(from lastEventID: String, replayed: Int) {
        self.withDiagnostics { diagnostics in
            diagnostics.resumedFrom = lastEventID
            diagnostics.replayedEvents = replayed
        }
    }

    private func recordError(_ error: ClientError) {
        self.withDiagnostics { diagnostics in
            if diagnostics.recentErrors.count == Self.recentErrorLimit {
                diagnostics.recentErrors.removeFirst()
            }
            diagnostics.recentErrors.append(error)
        }
    }

    private func withDiagnostics(_ change: (Diagnostics) -> Void) {
        self.diagnostics.withLock { diagnostics in
            let box = diagnostics ?? Diagnostics()
            diagnostics = box
            change(box)
        }
    }

    /// A snapshot; safe from any thread.
    func info() -> ClientInfo {
        var info = ClientInfo(
            connectionID: self.connectionID,
            clientID: self.clientID,
            remoteAddress: self.remoteAddress,
            userAgent: self.userAgent,
            connectedAt: self.connectedAt,
            eventsSent: self.publishedEventsSent.load(ordering: .relaxed),
            bytesSent: self.publishedBytesSent.load(ordering: .relaxed),
            consecutiveErrors: self.publishedConsecutiveErrors.load(ordering: .relaxed),
            totalErrors: self.publishedTotalErrors.load(ordering: .relaxed),
            backlogBytes: self.publishedBacklog.load(ordering: .relaxed),
            topics: self.topics.names,
            httpVersion: self.httpVersion
        )
        self.diagnostics.withLock { diagnostics in
            guard let diagnostics else { return }
            info.resumedFrom = diagnostics.resumedFrom
            info.replayedEvents = diagnostics.replayedEvents
            info.tokenSubject = diagnostics.tokenSubject
            info.tokenExpiresAt = diagnostics.tokenExpiresAt
            info.recentErrors = diagnostics.recentErrors
        }
        return info
    }
}
