import ArgumentParser

/// `sse-bench storm reset|connect|overload`: what a broker does when many clients act at once, or
/// when producers outrun its fan-out. A probe (its own subscriber and publisher) measures what the
/// storm costs everyone else; the broker's subscriber count comes from `--count-url`.
struct Storm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Storms: many subscribers reset or connect at once; producers faster than the fan-out.",
        discussion: """
            This broker (defaults): --count-url /metrics; the probe subscribes to /connect?id=probe0 and \
            publishes to /broadcast?id=probe0. nchan: --sub-path /sub/all --pub-path /pub/all \
            --probe-sub-path /sub/{id} --probe-pub-path /pub/{id} --count-url /nchan_status (a location \
            with nchan_stub_status; scripts/storm.sh adds one).
            """,
        subcommands: [StormReset.self, StormConnect.self, StormOverload.self]
    )
}
