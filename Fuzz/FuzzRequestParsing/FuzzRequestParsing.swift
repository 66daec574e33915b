import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SSEBroker
import SSEBrokerServer

let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
let broker = try! Broker(logger: quiet)
let secret = "fuzzing-secret-of-at-least-32-bytes!!"
let verifier = try! SubscriberTokenVerifier(secret: secret)
let security = ServerSecurity(
    publishToken: try! PublishToken("fuzz-token"),
    subscriberTokens: verifier,
    cors: try! CORSPolicy(allowedOrigins: ["https://app.example"]),
    limits: ServerLimits(maxClients: 4, maxConnectionsPerClientID: 2, maxHeaderBytes: 4096)
)
let admission = AdmissionControl(limits: security.limits)
let validToken = try! verifier.makeToken(subject: "alice")
nonisolated(unsafe) weak var weakBroker: Broker?

/// Subscriptions hold the broker weakly. Swift allocates an object's weak-reference side table on
/// the first weak reference and keeps its address only in shifted refcount bits, which LeakSanitizer
/// cannot read as a pointer: made during the first input, it would be reported as a leak. Made here,
/// before fuzzing starts (globals are lazy), it is part of no input.
func fuzzSetUp() {
    weakBroker = broker
    _ = (verifier, security, admission, validToken)
}

/// Fuzzes what a peer controls before it is trusted: raw bytes through the server's real HTTP
/// pipeline (NIO's decoder with the header limit, then `BrokerHTTPHandler` with tokens, CORS and
/// limits), and the parsers on their own — query strings, subscriber tokens, bearer and cookie
/// headers. Nothing may crash, and every response must be well-formed HTTP/1.1.
///
/// `@@TOKEN@@` in the input is replaced with a valid subscriber token for `alice`, so the fuzzer
/// also explores what happens after authentication.
func fuzzOne(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self).replacingOccurrences(of: "@@TOKEN@@", with: validToken)

    // The parsers on their own.
    _ = try? QueryParameters(uri: text)
    _ = try? verifier.verify(text)
    let head = HTTPRequestHead(
        version: .http1_1,
        method: .GET,
        uri: "/connect?" + text,
        headers: HTTPHeaders([("Authorization", text), ("Cookie", text), ("Origin", text)])
    )
    _ = try? ConnectRequest(head: head)
    _ = try? BroadcastRequest(head: head)
    var fields = HTTPFields()
    for name in [HTTPField.Name.authorization, .cookie, .origin] { fields[name] = text }
    let request = HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/connect?" + text, headerFields: fields)
    _ = try? ConnectRequest(request: request)
    if let query = try? QueryParameters(uri: head.uri) {
        _ = verifier.credential(in: request, query: query)
    }
    _ = security.cors?.allows(text)

    // The whole pipeline, on an embedded channel.
    let channel = EmbeddedChannel()
    var decoderLimits = NIOHTTPDecoderLimitConfiguration()
    decoderLimits.maxHeaderListSize = security.limits.maxHeaderBytes
    decoderLimits.maxHeaderFieldSize = security.limits.maxHeaderBytes
    try! channel.pipeline.syncOperations.addHandlers(
        HTTPResponseEncoder(),
        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: decoderLimits)),
        HTTPServerPipelineHandler(),
        BrokerHTTPHandler(broker: broker, security: security, admission: admission, logger: quiet)
    )
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    _ = try? channel.writeInbound(ByteBuffer(string: text))
    var output = ""
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        output += String(buffer: buffer)
    }
    precondition(output.isEmpty || output.hasPrefix("HTTP/1.1 "), "not an HTTP response: \(output.prefix(80))")
    channel.embeddedEventLoop.run()
    _ = try? channel.finish(acceptAlreadyClosed: true)
    channel.embeddedEventLoop.run()
}
