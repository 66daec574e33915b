import ArgumentParser
import SSEBrokerServer

/// HTTP/2 on the embedded server: by ALPN on https unless `--no-http2`, with prior knowledge on
/// plain http with `--h2c`.
struct HTTP2ConsoleOptions: ParsableArguments {
    @Flag(name: .customLong("h2c"), help: "Also accept cleartext HTTP/2 with prior knowledge on plain http (for a proxy that speaks h2c).")
    var cleartext = false

    @Flag(name: .customLong("no-http2"), help: "Serve HTTP/1.1 only; with --tls-cert, ALPN offers http/1.1 alone.")
    var disabled = false

    @Option(
        name: .customLong("max-streams"),
        help: ArgumentHelp("Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS).", valueName: "n")
    )
    var maxConcurrentStreams = 100

    /// - Parameter hasTLS: whether `--tls-cert` is given; h2c is cleartext only.
    func validate(hasTLS: Bool) throws {
        if self.cleartext && self.disabled {
            throw ValidationError("--h2c and --no-http2 contradict each other")
        }
        if self.cleartext && hasTLS {
            throw ValidationError("--h2c is for plain http; with --tls-cert, HTTP/2 is negotiated by ALPN")
        }
        guard (1...10_000).contains(self.maxConcurrentStreams) else {
            throw ValidationError("--max-streams must be between 1 and 10000 (got \(self.maxConcurrentStreams))")
        }
    }

    var options: HTTP2Options {
        self.disabled
            ? .disabled
            : HTTP2Options(overTLS: true, cleartext: self.cleartext, maxConcurrentStreams: self.maxConcurrentStreams)
    }
}
