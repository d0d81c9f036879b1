import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// A WebSocket client that plays an agent: connects with the HTTP/1.1 upgrade, sends masked
/// text frames, and hands out what the hub sends, one event at a time, with a timeout.
final class WebSocketTestClient: Sendable {
    enum Event: Equatable, Sendable {
        case text(String)
        case close(code: UInt16?, reason: String)
        /// The TCP connection ended.
        case ended
    }

    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    struct UpgradeRefused: Error {}

    private let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    private enum Upgrade: Sendable {
        case upgraded(any Channel)
        case refused
    }

    static func connect(port: Int, path: String = "/agent") async throws -> WebSocketTestClient {
        let inbox = Inbox()
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(FrameCollector(inbox: inbox))
                            return Upgrade.upgraded(channel)
                        }
                    })
                    var headers = HTTPHeaders()
                    headers.add(name: "host", value: "127.0.0.1:\(port)")
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head,
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture { Upgrade.refused }
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration)
                    )
                }
            }
        switch try await upgrade.get() {
        case .upgraded(let channel): return WebSocketTestClient(channel: channel, inbox: inbox)
        case .refused: throw UpgradeRefused()
        }
    }

    func send(text: String) async throws {
        try await send(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text)))
    }

    /// Connects to the hub's `/agent` and says hello, as every agent begins.
    static func hello(port: Int, agentID: String, key: String) async throws -> WebSocketTestClient {
        let client = try await connect(port: port)
        try await client.sendHello(agentID: agentID, key: key)
        return client
    }

    func sendHello(agentID: String, key: String) async throws {
        try await send(text: #"{"type":"hello","agent_id":"\#(agentID)","key":"\#(key)"}"#)
    }

    /// A hello with the credential the hub gave in an earlier welcome.
    static func hello(port: Int, agentID: String, credential: String) async throws -> WebSocketTestClient {
        let client = try await connect(port: port)
        try await client.send(text: #"{"type":"hello","agent_id":"\#(agentID)","credential":"\#(credential)"}"#)
        return client
    }

    func sendHeartbeat() async throws {
        try await send(text: #"{"type":"heartbeat"}"#)
    }

    func send(_ frame: WebSocketFrame) async throws {
        try await channel.writeAndFlush(frame)
    }

    /// The next thing the hub sent; throws when nothing comes within `timeout`.
    func next(within timeout: Duration = .seconds(5)) async throws -> Event {
        guard let event = await inbox.next(within: timeout, on: channel.eventLoop) else {
            throw Timeout(description: "nothing from the hub within \(timeout)")
        }
        return event
    }

    /// Skips text frames until the close frame (or the end); throws on timeout.
    func nextClose(within timeout: Duration = .seconds(5)) async throws -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            let event = try await next(within: deadline - .now)
            if case .text = event { continue }
            return event
        }
    }

    func close() async {
        try? await channel.close()
    }
}

/// Received events and at most one waiter, under one lock.
private final class Inbox: Sendable {
    private struct State {
        var events: [WebSocketTestClient.Event] = []
        var waiter: (id: Int, continuation: CheckedContinuation<WebSocketTestClient.Event?, Never>)?
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func deliver(_ event: WebSocketTestClient.Event) {
        let waiter = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return Optional(waiter.continuation)
            }
            state.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    func next(within timeout: Duration, on eventLoop: any EventLoop) async -> WebSocketTestClient.Event? {
        await withCheckedContinuation { continuation in
            let id: Int? = state.withLock { state in
                if !state.events.isEmpty {
                    continuation.resume(returning: state.events.removeFirst())
                    return nil
                }
                state.nextWaiter += 1
                state.waiter = (state.nextWaiter, continuation)
                return state.nextWaiter
            }
            guard let id else { return }
            let nanoseconds = max(
                0,
                timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
            )
            eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { [self] in
                let expired = state.withLock { state in
                    guard let waiter = state.waiter, waiter.id == id else {
                        return Optional<CheckedContinuation<WebSocketTestClient.Event?, Never>>.none
                    }
                    state.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }
}

/// Turns frames into events and answers the hub's close frame, as a well-behaved agent does.
private final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let inbox: Inbox
    private var answeredClose = false

    init(inbox: Inbox) { self.inbox = inbox }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            inbox.deliver(.text(String(buffer: frame.unmaskedData)))
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self)
            let reason = data.readString(length: data.readableBytes) ?? ""
            inbox.deliver(.close(code: code, reason: reason))
            if !answeredClose {
                answeredClose = true
                var echo = context.channel.allocator.buffer(capacity: 2)
                if let code { echo.writeInteger(code) }
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
                context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.deliver(.ended)
        context.fireChannelInactive()
    }
}
