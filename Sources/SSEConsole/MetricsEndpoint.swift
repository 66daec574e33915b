import HTTPTypes
import NIOCore
import Prometheus
import SSEBroker
import SSEBrokerServer

extension HTTPRoute {
    /// `GET /metrics` in the Prometheus text format. The broker's statistics are mirrored into the
    /// registry on each scrape, so a scrape always sees the counters as they are at that moment and
    /// nothing runs between scrapes.
    static func prometheus(_ path: String = "/metrics", broker: Broker, registry: PrometheusCollectorRegistry) -> HTTPRoute {
        .get(path) { _ in
            broker.updateMetrics()
            var output: [UInt8] = []
            output.reserveCapacity(4096)
            registry.emit(into: &output)
            return HTTPErrorResponse(
                status: .ok,
                headerFields: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ByteBuffer(bytes: output)
            )
        }
    }
}
