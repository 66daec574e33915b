import Logging
import SSEBroker
import SSEBrokerServer
import ServiceLifecycle

// The broker and its HTTP server in an app of its own, run as a Service: SIGTERM or SIGINT shut it
// down gracefully (accepted events delivered, a farewell to every subscriber, five seconds' grace).
//
//     swift run DownstreamApp [port]      # then: curl -N localhost:8080/connect
let port = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 8080
let logger = Logger(label: "downstream")
let broker = try Broker(configuration: BrokerConfiguration(tolerance: 3))
let server = BrokerServer(broker: broker, host: "127.0.0.1", port: port, extraRoutes: [.health("/healthz", broker: broker)])
let group = ServiceGroup(
    configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
)
try await group.run()
