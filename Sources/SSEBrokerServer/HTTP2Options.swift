/// HTTP/2 on ``BrokerServer``.
///
/// Over HTTP/1.1 a browser opens at most six connections per origin, and each `EventSource` holds
/// one for ever: the seventh stream of a page never opens. Over HTTP/2 every stream of an origin
/// shares one connection. Each stream is a subscriber (or a producer's request) exactly like an
/// HTTP/1.1 connection: the same limits, tokens, CORS, replay and slow-client policy, per stream.
public struct HTTP2Options: Sendable, Hashable {
    /// Offer `h2` by ALPN on an https server (``BrokerServer/useTLS(_:)``), beside `http/1.1`.
    public var overTLS: Bool
    /// Accept cleartext HTTP/2 with prior knowledge (h2c) on a plain-http server, beside HTTP/1.1
    /// (told apart by the connection preface): for a proxy that speaks h2c to the broker.
    public var cleartext: Bool
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`: the streams one connection may have open at once. A
    /// stream beyond it is refused (`RST_STREAM` with `REFUSED_STREAM`); a client that keeps opening
    /// them loses its connection (NIO's stream-error rate limit).
    public var maxConcurrentStreams: Int
    /// Streams a client may reset within 30 seconds before its connection is closed with
    /// `GOAWAY` `ENHANCE_YOUR_CALM`: the defence against "rapid reset" floods (CVE-2023-44487).
    public var maxStreamResets: Int

    public init(overTLS: Bool = true, cleartext: Bool = false, maxConcurrentStreams: Int = 100, maxStreamResets: Int = 200) {
        self.overTLS = overTLS
        self.cleartext = cleartext
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxStreamResets = maxStreamResets
    }

    /// HTTP/1.1 only, with or without TLS.
    public static let disabled = HTTP2Options(overTLS: false, cleartext: false)
}
