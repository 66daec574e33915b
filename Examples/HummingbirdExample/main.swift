// An app that already has a Hummingbird router mounts the broker on it.
//
//     swift run sse-hummingbird-example            # http://127.0.0.1:8080
//     curl -N 'http://127.0.0.1:8080/events?id=alice'
//     curl -X POST 'http://127.0.0.1:8080/publish?type=greeting' -d 'hello'
//
// The browser page is at http://127.0.0.1:8080/. Ctrl-C closes every stream and stops.
import Foundation
import Hummingbird
import Logging
import SSEBroker
import SSEBrokerHummingbird
import ServiceLifecycle

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8080 : 8080
let logger = Logger(label: "sse-hummingbird-example")

let broker = try Broker(configuration: BrokerConfiguration(retry: .seconds(1)), logger: logger)
let router = Router(context: BasicBrokerRequestContext.self)
router.get("/hello") { _, _ in "the app's own routes keep working\n" }
router.addSSEBroker(broker, connect: "/events", broadcast: "/publish")
router.addSSEBrokerPage("/", routes: BrokerRoutes(connect: "/events", broadcast: "/publish"))

let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        print("listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)")
        fflush(nil)
    },
    logger: logger
)
let services = ServiceGroup(
    configuration: .init(
        services: [app, BrokerService(broker: broker)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
)
try await services.run()
