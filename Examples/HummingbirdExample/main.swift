// An app that already has a Hummingbird router mounts the broker on it.
//
//     swift run sse-hummingbird-example            # http://127.0.0.1:8080
//     curl -N 'http://127.0.0.1:8080/events?id=alice'
//     curl -X POST 'http://127.0.0.1:8080/publish?type=greeting' -d 'hello'
//
// The browser page is at http://127.0.0.1:8080/. Ctrl-C closes every stream and stops.
//
// With a certificate and its key, Hummingbird's own TLS + HTTP/2 server (h2 or http/1.1 by ALPN):
//
//     swift run sse-hummingbird-example 8443 cert.pem key.pem   # https://127.0.0.1:8443
//     curl -k --http2 -N 'https://127.0.0.1:8443/events?id=alice'
import Foundation
import Hummingbird
import HummingbirdHTTP2
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

// The mount writes each stream through Hummingbird's response body writer, so it is the same over h2.
let tls: TLSConfiguration? =
    arguments.count > 3
    ? TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[2]).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[3], format: .pem))
    )
    : nil
let app = Application(
    router: router,
    server: try tls.map { try .http2Upgrade(tlsConfiguration: $0) } ?? .http1(),
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        print("listening on \(tls == nil ? "http" : "https")://127.0.0.1:\(channel.localAddress?.port ?? port)")
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
