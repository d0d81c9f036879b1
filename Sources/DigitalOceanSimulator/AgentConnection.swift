import Foundation
import DigitalOceanModel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// One WebSocket connection of a stand-in agent: HTTP/1.1 upgrade, hello, then heartbeats until
/// either side closes, the admin API disconnects it, or its droplet goes away.
struct AgentConnection: Sendable {
    enum Outcome: Sendable, Equatable {
        /// Welcomed, later closed (by the hub, an error, or the network). `credential`: the one
        /// the hub's welcome gave, to present from now on instead of the single-use key.
        case welcomedThenClosed(credential: String?)
        /// The hub answered `refused`.
        case refused(reason: String)
        /// Not welcomed: could not connect, no upgrade, no answer to hello, or an error.
        case failed(String)
        /// Closed by the agent: disconnected through the admin API, or the droplet is going.
        case stopped
    }

    let endpoint: AgentEndpoint
    let dropletID: Int64
    let simulator: SimulatedDigitalOcean
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    /// The hub closes a connection without a hello after 10 s; an agent gives up on an answer as late.
    static let welcomeTimeout: TimeInterval = 10

    private enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case notUpgraded(any Channel)
    }

    /// Says hello with `credential` (the hub's, from an earlier welcome) if there is one, else
    /// with the bootstrap `key`.
    func run(agentID: String, key: String, credential: String?) async -> Outcome {
        let upgrade: Upgrade
        do {
            upgrade = try await connect()
        } catch {
            return .failed("cannot connect to \(endpoint): \(error)")
        }
        switch upgrade {
        case .notUpgraded(let channel):
            try? await channel.close()
            return .failed("\(endpoint) did not accept a WebSocket upgrade")
        case .websocket(let channel):
            do {
                return try await converse(channel, agentID: agentID, key: key, credential: credential)
            } catch {
                return .failed("connection to \(endpoint) failed: \(error)")
            }
        }
    }

    /// `localhost` is dialled as 127.0.0.1, then ::1: only loopback addresses, whatever a resolver says.
    private func connect() async throws -> Upgrade {
        let hosts = endpoint.host.lowercased() == "localhost" ? ["127.0.0.1", "::1"] : [endpoint.host]
        var lastError: any Error = ChannelError.connectTimeout(.seconds(2))
        for host in hosts {
            do {
                return try await connect(to: host)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func connect(to host: String) async throws -> Upgrade {
        let endpoint = self.endpoint
        let future = try await ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0,
                                        maxAccumulatedFrameCount: 64,
                                        maxAccumulatedFrameSize: 1 << 16
                                    )
                                )
                                return Upgrade.websocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                            }
                        }
                    )
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: endpoint.authority)
                    headers.add(name: "Content-Length", value: "0")
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.target, headers: headers)
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head,
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeSucceededFuture(.notUpgraded(channel))
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration)
                    )
                }
            }
        return try await future.get()
    }

    /// What the reader has heard, for the writer (and the outcome).
    private struct Progress: Sendable {
        var welcomed = false
        var credential: String?
        var refusal: String?
        var closedByHub = false
        var stoppedByAgent = false
    }

    /// Shared by the reader and the writer tasks.
    private final class ProgressBox: Sendable {
        init() {}
        private let progress = Mutex(Progress())
        func withLock<T: Sendable>(_ body: (inout Progress) -> T) -> T { progress.withLock { body(&$0) } }
    }

    private func converse(
        _ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
        agentID: String,
        key: String,
        credential: String?
    ) async throws -> Outcome {
        let progress = ProgressBox()
        let dropletID = self.dropletID
        let simulator = self.simulator
        try await channel.executeThenClose { inbound, outbound in
            let secret: (String, JSONValue) = credential.map { ("credential", .string($0)) } ?? ("key", .string(key))
            let hello: JSONValue = .object([("type", "hello"), ("agent_id", .string(agentID)), secret])
            try await outbound.write(Self.text(hello))
            let helloSentAt = Date()

            await withTaskGroup(of: Void.self) { group in
                // Reader: welcome/refused, pings, the hub's close.
                group.addTask {
                    do {
                        for try await frame in inbound {
                            switch frame.opcode {
                            case .text:
                                let message = try? JSONValue.parse(frame.unmaskedData.readableBytesView)
                                switch message?["type"]?.stringValue {
                                case "welcome":
                                    let given = message?["credential"]?.stringValue
                                    progress.withLock {
                                        $0.welcomed = true
                                        $0.credential = given
                                    }
                                    simulator.updateAgentStatus(dropletID: dropletID) {
                                        $0.state = .connected
                                        $0.connections += 1
                                        $0.note = nil
                                    }
                                case "refused":
                                    let reason = message?["reason"]?.stringValue ?? "no reason given"
                                    progress.withLock { $0.refusal = reason }
                                default:
                                    break
                                }
                            case .ping:
                                try? await outbound.write(Self.frame(.pong, data: frame.unmaskedData))
                            case .connectionClose:
                                progress.withLock { $0.closedByHub = true }
                                var code = frame.unmaskedData
                                let echo = code.readSlice(length: min(2, code.readableBytes)) ?? ByteBuffer()
                                try? await outbound.write(Self.frame(.connectionClose, data: echo))
                                return
                            default:
                                break
                            }
                        }
                    } catch {
                        // The connection ended; the outcome says how far it got.
                    }
                }
                // Writer: heartbeats while welcomed; closes when told to or when no answer comes.
                group.addTask {
                    var nextBeat: Date?
                    var wasBeating = true
                    var refusedAt: Date?
                    while !Task.isCancelled {
                        let now = Date()
                        let heard = progress.withLock { $0 }
                        guard let assignment = simulator.agentAssignment(dropletID: dropletID),
                            assignment.connectEnabled
                        else {
                            progress.withLock { $0.stoppedByAgent = true }
                            try? await outbound.write(Self.close(code: 1000))
                            return
                        }
                        if heard.refusal != nil {
                            // The hub's close frame follows a refusal; give the reader a moment to see it.
                            let since = refusedAt ?? now
                            refusedAt = since
                            if now.timeIntervalSince(since) > 2 { return }
                        } else if !heard.welcomed {
                            if now.timeIntervalSince(helloSentAt) > Self.welcomeTimeout { return }
                        } else if assignment.heartbeatsEnabled {
                            let interval = assignment.timing.heartbeatIntervalSeconds
                            // First beat one interval after the welcome; at once when heartbeats resume.
                            let due = wasBeating ? (nextBeat ?? now.addingTimeInterval(interval)) : now
                            nextBeat = due
                            wasBeating = true
                            if now >= due {
                                do {
                                    try await outbound.write(Self.text(.object([("type", "heartbeat")])))
                                } catch {
                                    return
                                }
                                simulator.updateAgentStatus(dropletID: dropletID) { $0.heartbeatsSent += 1 }
                                nextBeat = now.addingTimeInterval(interval)
                            }
                        } else {
                            wasBeating = false
                        }
                        try? await Task.sleep(for: SimulatedAgent.checkInterval)
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
        let heard = progress.withLock { $0 }
        if let refusal = heard.refusal { return .refused(reason: refusal) }
        if heard.stoppedByAgent { return .stopped }
        if heard.welcomed { return .welcomedThenClosed(credential: heard.credential) }
        return .failed(
            heard.closedByHub
                ? "the hub closed the connection before a welcome" : "no welcome within \(Int(Self.welcomeTimeout)) s"
        )
    }

    static func text(_ message: JSONValue) -> WebSocketFrame {
        frame(.text, data: ByteBuffer(bytes: message.serialized()))
    }

    static func close(code: UInt16) -> WebSocketFrame {
        var data = ByteBuffer()
        data.writeInteger(code)
        return frame(.connectionClose, data: data)
    }

    /// Client frames are masked (RFC 6455 §5.3); the encoder applies the key.
    static func frame(_ opcode: WebSocketOpcode, data: ByteBuffer) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
    }
}
