#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import HTTPTypes

/// Builds the HTTP response for a refused request, as the Go original's `ErrorHandler` does.
///
/// The request and status are swift-http-types' (as Hummingbird's), whatever the protocol: the same
/// handler serves HTTP/1.1 and HTTP/2.
///
/// - Parameters:
///   - request: the refused request (method, path with its query, header fields); for a request
///     refused before its head could be parsed (malformed, headers too large, too slow) a
///     placeholder: `GET` with an empty path.
///   - status: the status the broker would answer with.
///   - error: why the request was refused.
/// - Returns: the response to send. For `405` the server adds an `Allow` header if you leave it out.
public typealias HTTPErrorHandler =
    @Sendable (_ request: HTTPRequest, _ status: HTTPResponse.Status, _ error: BrokerError) -> HTTPErrorResponse

/// A complete, small HTTP response: a refusal built by an ``HTTPErrorHandler``, or the answer of
/// one of the server's extra routes. The server adds what the protocol needs (`Content-Length`, and
/// `Connection` over HTTP/1.1).
public struct HTTPErrorResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headerFields: HTTPFields
    public var body: ByteBuffer

    public init(status: HTTPResponse.Status, headerFields: HTTPFields = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headerFields = headerFields
        self.body = body
    }

    /// The default: `text/plain` with the status line and the error's message.
    public static func plainText(status: HTTPResponse.Status, error: BrokerError) -> HTTPErrorResponse {
        HTTPErrorResponse(
            status: status,
            headerFields: [.contentType: "text/plain; charset=utf-8"],
            body: ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(error)\n")
        )
    }
}

/// How the broker treats its clients. The first three fields are the Go original's `Config`.
public struct BrokerConfiguration: Sendable {
    /// How long a client may stay unable to accept data before each event it misses counts as an
    /// error. Default 3 s.
    public var writeTimeout: Duration
    /// How many *sequential* errors a client may have before it is forcibly disconnected (the socket
    /// is closed). A successful delivery resets the count. Default 3.
    public var tolerance: Int
    /// Builds the responses for refused HTTP requests; `nil` uses ``HTTPErrorResponse/plainText(status:error:)``.
    public var errorHandler: HTTPErrorHandler?
    /// How often a comment line is sent to every client so proxies and idle timers keep the stream
    /// open; it also reveals dead clients. Default 15 s.
    public var heartbeatInterval: Duration
    /// The `retry:` hint sent to every client: how long an `EventSource` waits before reconnecting.
    /// `nil` sends none (browsers then default to about 3 s). Default 3 s.
    public var retry: Duration?
    /// How many of the latest events are kept to replay to clients that reconnect with
    /// `Last-Event-ID`. `0` turns replay off. Default 1,000.
    public var historySize: Int
    /// An upper bound on the bytes the replay history holds; the oldest events go first. Default 16 MiB.
    public var historyByteLimit: Int
    /// The largest `POST /broadcast` body accepted; larger ones get `413` without being read. Default 1 MiB.
    public var maxBodyBytes: Int
    /// The most bytes queued for one client that is not keeping up; past it, events it misses count
    /// as errors. Default 256 KiB.
    public var maxClientBacklogBytes: Int
    /// How many events a `listen()` stream buffers for a consumer that is not reading; beyond it the
    /// oldest are dropped (and counted). Default 4,096.
    public var listenerBufferSize: Int
    /// Where event ids start. Default ``EventIDSeed/clock``: ids keep growing across restarts, so a
    /// client resuming with an id from before a restart is recognised as such (see ``ReplayStatus``).
    public var eventIDSeed: EventIDSeed
    /// How much the `retry:` hint varies per connection, as a fraction of ``retry``: each connection
    /// gets a value drawn uniformly from `retry ... retry × (1 + retryJitter)`, so a fleet of clients
    /// disconnected at once (a deploy, a kick) does not come back at once. `0` sends exactly
    /// ``retry``. Default 0.5 (3 s becomes 3–4.5 s).
    public var retryJitter: Double
    /// The most events accepted and not yet written, per event loop. Past it (or past
    /// ``maxQueuedBytes``) publishers are pushed back: ``Broker/publish(_:to:)`` and `POST /broadcast`
    /// wait for the loops to catch up (the producer's connection is not read meanwhile), and after
    /// ``overloadWait`` are refused with ``BrokerError/overloaded(_:)`` (`503` + `Retry-After`).
    /// ``Broker/broadcast(_:)`` refuses at once. One event is always accepted by an idle loop.
    /// Default 1,024.
    public var maxQueuedEvents: Int
    /// The most bytes accepted and not yet written, per event loop, counted as each event's encoded
    /// size times the connections it goes to on that loop (the writes the loop owes; the events
    /// themselves are shared buffers, so memory is far less). Default 32 MiB: about 50 events of
    /// 64 bytes to 10,000 connections, or a second of fan-out work on one core — a bound on how far
    /// behind the loops may fall, and room enough for each flush to carry several events per client.
    public var maxQueuedBytes: Int
    /// How long ``Broker/publish(_:to:)`` (and so `POST /broadcast`) waits for an overloaded broker
    /// to catch up before it refuses the event. Default 5 s.
    public var overloadWait: Duration
    /// Topics that get their own metric series (`sse_topic_subscriptions`,
    /// `sse_topic_deliveries_total`, with a `topic` dimension): an explicit allow-list of at most
    /// ``maxMetricsTopics``, exact or patterns. Never the topics clients send: a series per
    /// arbitrary string would let any subscriber grow the metrics backend without bound.
    public var metricsTopics: [String]

    /// The most ``metricsTopics``.
    public static let maxMetricsTopics = 32

    public init(
        writeTimeout: Duration = .seconds(3),
        tolerance: Int = 3,
        errorHandler: HTTPErrorHandler? = nil,
        heartbeatInterval: Duration = .seconds(15),
        retry: Duration? = .seconds(3),
        historySize: Int = 1000,
        historyByteLimit: Int = 16 << 20,
        maxBodyBytes: Int = 1 << 20,
        maxClientBacklogBytes: Int = 256 << 10,
        listenerBufferSize: Int = 4096,
        eventIDSeed: EventIDSeed = .clock,
        retryJitter: Double = 0.5,
        maxQueuedEvents: Int = 1024,
        maxQueuedBytes: Int = 32 << 20,
        overloadWait: Duration = .seconds(5),
        metricsTopics: [String] = []
    ) {
        self.metricsTopics = metricsTopics
        self.writeTimeout = writeTimeout
        self.tolerance = tolerance
        self.errorHandler = errorHandler
        self.heartbeatInterval = heartbeatInterval
        self.retry = retry
        self.historySize = historySize
        self.historyByteLimit = historyByteLimit
        self.maxBodyBytes = maxBodyBytes
        self.maxClientBacklogBytes = maxClientBacklogBytes
        self.listenerBufferSize = listenerBufferSize
        self.eventIDSeed = eventIDSeed
        self.retryJitter = retryJitter
        self.maxQueuedEvents = maxQueuedEvents
        self.maxQueuedBytes = maxQueuedBytes
        self.overloadWait = overloadWait
    }

    /// Throws ``BrokerError/invalidConfiguration(_:)`` naming the first value out of range.
    public func validate() throws(BrokerError) {
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(BrokerError) {
            if !condition { throw .invalidConfiguration(message()) }
        }
        try require(self.writeTimeout >= .zero, "writeTimeout must not be negative (got \(self.writeTimeout))")
        try require(self.tolerance >= 1, "tolerance must be at least 1 (got \(self.tolerance))")
        try require(self.heartbeatInterval > .zero, "heartbeatInterval must be positive (got \(self.heartbeatInterval))")
        if let retry = self.retry {
            try require(retry >= .zero, "retry must not be negative (got \(retry))")
        }
        try require(self.historySize >= 0, "historySize must not be negative (got \(self.historySize))")
        try require(self.historyByteLimit >= 0, "historyByteLimit must not be negative (got \(self.historyByteLimit))")
        try require(self.maxBodyBytes >= 0, "maxBodyBytes must not be negative (got \(self.maxBodyBytes))")
        try require(
            self.maxClientBacklogBytes > 0,
            "maxClientBacklogBytes must be positive (got \(self.maxClientBacklogBytes))"
        )
        try require(self.listenerBufferSize >= 1, "listenerBufferSize must be at least 1 (got \(self.listenerBufferSize))")
        try require(
            self.retryJitter >= 0 && self.retryJitter <= 10,
            "retryJitter must be between 0 and 10 (got \(self.retryJitter))"
        )
        try require(self.maxQueuedEvents >= 1, "maxQueuedEvents must be at least 1 (got \(self.maxQueuedEvents))")
        try require(self.maxQueuedBytes >= 1, "maxQueuedBytes must be at least 1 (got \(self.maxQueuedBytes))")
        try require(self.overloadWait >= .zero, "overloadWait must not be negative (got \(self.overloadWait))")
        try require(
            self.metricsTopics.count <= Self.maxMetricsTopics,
            "metricsTopics has \(self.metricsTopics.count) topics; the limit is \(Self.maxMetricsTopics)"
        )
        for topic in self.metricsTopics {
            do {
                _ = try Topic(topic)
            } catch {
                throw .invalidConfiguration("metricsTopics: \(error)")
            }
        }
    }
}

/// Where a broker's event ids start.
public enum EventIDSeed: Sendable, Hashable {
    /// After the microseconds since 1970 at start (about 1.8 × 10¹⁵ in 2026, well inside the 2⁵³
    /// a JavaScript number holds exactly): a restarted broker's ids are above every id of the runs
    /// before it, as long as those published fewer than a million events per second on average.
    case clock
    /// After a fixed value: `.after(0)` numbers events 1, 2, 3 … in every run, as the Go original
    /// does; a client resuming after a restart cannot then tell old ids from new ones.
    case after(UInt64)

    /// The id the first event follows.
    var base: UInt64 {
        switch self {
        case .clock:
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
        case .after(let value):
            return value
        }
    }
}
