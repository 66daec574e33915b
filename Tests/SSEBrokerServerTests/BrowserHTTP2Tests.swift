#if TLS
import NIOPosix
import NIOSSL
import SSEBroker
import SSEBrokerServer
import SSETestSupport
import Testing

/// Why HTTP/2 matters to a web page: Chromium opens at most six HTTP/1.1 connections per origin and
/// an `EventSource` holds one for ever, so the seventh stream of a page never opens; over h2 all ten
/// streams of the page share one connection.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct BrowserHTTP2Tests {
    /// Opens ten `EventSource`s from a page of the server's origin; each records what it receives.
    private static let openTen = """
        window.opened = 0; window.received = {};
        for (let i = 0; i < 10; i++) {
            const source = new EventSource('/connect?id=tab' + i);
            window.received[i] = [];
            source.onopen = () => { window.opened++; };
            source.onmessage = (event) => { window.received[i].push(event.lastEventId); };
        }
        """

    /// A page of the server's origin that opens no stream of its own.
    private static let page = HTTPRoute.get("/blank") { _ in .text("blank") }

    private static func publish(_ broker: Broker, _ count: Int) throws -> [String] {
        try (0..<count).map { String(try broker.broadcast(Event(data: "e\($0)")).eventID) }
    }

    @Test func tenEventSourcesInOnePage_allStreamOverHTTP2() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let server = BrokerServer(
            broker: broker, port: 0, extraRoutes: [Self.page], group: MultiThreadedEventLoopGroup.singleton,
            logger: quietLogger
        )
        try server.useTLS(
            TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
            )
        )
        let port = try #require(try await server.start().port)
        try await WebDriver.withSession(arguments: ["--ignore-certificate-errors"]) { browser in
            try await browser.navigate(to: "https://127.0.0.1:\(port)/blank")
            try await browser.execute(Self.openTen)
            try await browser.waitUntil("ten streams open", script: "return window.opened === 10", describe: "return window.opened")
            let clients = broker.clients
            #expect(clients.count == 10)
            #expect(clients.allSatisfy { $0.httpVersion == "h2" })
            #expect(Set(clients.compactMap(\.remoteAddress)).count == 1, "one connection for the ten")
            let published = try Self.publish(broker, 3)
            try await browser.waitUntil(
                "three events on every stream",
                script: "return Object.values(window.received).every(ids => ids.length === 3)",
                describe: "return JSON.stringify(window.received)"
            )
            let received = try await browser.execute("return Object.values(window.received)") as? [[String]]
            #expect(received == Array(repeating: published, count: 10))
        }
        try await server.shutdown()
    }

    @Test func overHTTP11_theSeventhEventSourceOfAPage_neverOpens() async throws {
        try await TestServer.with(extraRoutes: [Self.page]) { server in
            try await WebDriver.withSession { browser in
                try await browser.navigate(to: "http://127.0.0.1:\(server.port)/blank")
                try await browser.execute(Self.openTen)
                try await browser.waitUntil("six streams open", script: "return window.opened === 6", describe: "return window.opened")
                // An event the six receive: by then the browser has had every chance to open more.
                let published = try Self.publish(server.broker, 1)
                try await browser.waitUntil(
                    "the event on the open streams",
                    script: "return Object.values(window.received).filter(ids => ids.length === 1).length === 6",
                    describe: "return JSON.stringify(window.received)"
                )
                #expect(try await browser.execute("return window.opened") as? Int == 6)
                #expect(server.broker.clients.count == 6, "four EventSources wait for a connection that never frees up")
                #expect(server.broker.clients.allSatisfy { $0.httpVersion == "HTTP/1.1" })
                _ = published
            }
        }
    }
}
#endif
