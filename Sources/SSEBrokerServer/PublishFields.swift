import HTTPTypes
import SSEBroker

/// What a publish's header fields announce, found in one pass over them (a lookup by name per
/// field was 3% of a one-event publish).
struct PublishFields {
    /// `Content-Length` (NIO's parser has refused a malformed or conflicting one).
    var contentLength: Int?
    /// `Expect: 100-continue`.
    var expectsContinue = false
    /// The `Idempotency-Key`, validated; several are ambiguous, and refused.
    var idempotencyKey: String?

    init(_ fields: HTTPFields) throws(BrokerError) {
        var keys = 0
        for field in fields {
            switch field.name {
            case .contentLength:
                self.contentLength = Int(field.value)
            case .expect:
                self.expectsContinue = field.value.lowercased() == "100-continue"
            case .idempotencyKey:
                keys += 1
                guard keys == 1 else { throw .invalidParameter("the request has more than one Idempotency-Key header") }
                self.idempotencyKey = try IdempotencyStore.validateKey(field.value)
            default:
                continue
            }
        }
    }
}
