import NIOCore
import NIOTLS

/// The first handler of a connection that may speak HTTP/1.1 or HTTP/2: it waits until the protocol
/// is known, has ``ConnectionSetup`` build the pipeline for it, hands over what it read meanwhile,
/// and leaves.
///
/// - ``Mode/alpn``: on https, the protocol TLS negotiated (`h2`, else HTTP/1.1).
/// - ``Mode/preface``: on plain http with h2c, the first bytes: the HTTP/2 connection preface
///   (`PRI * HTTP/2.0…`, 24 bytes) means prior-knowledge HTTP/2, anything else HTTP/1.1, decided
///   at the first byte that differs.
///
/// A connection that has not settled within ``ServerLimits/headerTimeout`` (a TLS handshake or a
/// preface that never completes) is closed, as an HTTP/1.1 request line that never arrives is.
final class ProtocolSelectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Mode {
        case alpn
        case preface
    }

    private enum State {
        case selecting(ByteBuffer?)
        case selected
    }

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let mode: Mode
    private let setup: ConnectionSetup
    private var state = State.selecting(nil)
    private var deadline: Scheduled<Void>?

    init(mode: Mode, setup: ConnectionSetup) {
        self.mode = mode
        self.setup = setup
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.armDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.armDeadline(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
    }

    private func armDeadline(context: ChannelHandlerContext) {
        guard self.deadline == nil else { return }
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.setup.security.limits.headerTimeout)) {
            guard case .selecting = self.state else { return }
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .selecting(var buffered) = self.state else {
            context.fireChannelRead(data)
            return
        }
        var bytes = self.unwrapInboundIn(data)
        self.state = .selected  // no copy on append
        if buffered == nil {
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        self.state = .selecting(buffered)
        guard case .preface = self.mode, let received = buffered else { return }
        let view = received.readableBytesView
        let count = min(view.count, Self.preface.count)
        if !view.prefix(count).elementsEqual(Self.preface.prefix(count)) {
            self.select(http2: false, context: context)
        } else if count == Self.preface.count {
            self.select(http2: true, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .alpn = self.mode, case .selecting = self.state,
            let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event
        {
            self.select(http2: negotiated == "h2", context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func select(http2: Bool, context: ChannelHandlerContext) {
        guard case .selecting(let buffered) = self.state else { return }
        self.state = .selected
        self.deadline?.cancel()
        self.deadline = nil
        do {
            if http2 {
                try self.setup.configureHTTP2(context.channel)
            } else {
                try self.setup.configureHTTP1(context.channel)
            }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if let buffered {
            context.fireChannelRead(self.wrapInboundOut(buffered))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
