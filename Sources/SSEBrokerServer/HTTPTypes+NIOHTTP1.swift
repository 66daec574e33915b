import HTTPTypes
import NIOHTTP1
import SSEBroker

// NIOHTTP1's request and response heads to and from swift-http-types', at the edge of
// ``BrokerHTTPHandler``: the core and the request rules only know the latter, which HTTP/2 and
// Hummingbird share. (swift-nio-extras' `NIOHTTPTypesHTTP1` codecs would do this in the pipeline,
// but would add its dependencies to every app that uses the server; two small functions will do.)

extension HTTPRequest {
    /// The request `head` is: method, target (as `path`, query included) and fields. A field whose
    /// name is not a valid token (NIO's parser has already refused those) is left out.
    init(_ head: HTTPRequestHead) {
        let method = HTTPRequest.Method(head.method.rawValue) ?? .get
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            if let name = HTTPField.Name(name) {
                fields.append(HTTPField(name: name, value: value))
            }
        }
        self.init(method: method, scheme: nil, authority: nil, path: head.uri, headerFields: fields)
    }
}

extension HTTPResponseHead {
    /// The head of `response` on an HTTP/1 connection (or an HTTP/2 stream behind NIO's HTTP/1 codec).
    init(version: HTTPVersion, _ response: HTTPResponse) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headerFields.count)
        for field in response.headerFields {
            headers.add(name: field.name.rawName, value: field.value)
        }
        self.init(
            version: version,
            status: HTTPResponseStatus(statusCode: response.status.code, reasonPhrase: response.status.reasonPhrase),
            headers: headers
        )
    }
}

extension ConnectRequest {
    /// Parses a `GET /connect` of a NIOHTTP1 server.
    public init(head: HTTPRequestHead) throws(BrokerError) {
        try self.init(request: HTTPRequest(head))
    }
}

extension BroadcastRequest {
    /// Parses a `POST /broadcast` of a NIOHTTP1 server.
    public init(head: HTTPRequestHead) throws(BrokerError) {
        try self.init(request: HTTPRequest(head))
    }
}
