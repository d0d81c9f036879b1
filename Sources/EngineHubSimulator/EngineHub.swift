import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The local stand-in for the platform's Engine Hub (docs/agent-protocol.md): agents connect
/// over WebSocket on `/agent`, the hub checks their keys against `agents.key_sha256` and keeps
/// `connected_at` / `last_seen_at`. Plain HTTP on the same port serves `/healthz` and `/admin/…`.
///
/// As a service: `bind` (the port is known at once), then `run()` in a `ServiceGroup`. In a test:
///
///     let hub = try await EngineHub.start(configuration: .init(databaseURL: url))
///     ... hub.url, hub.stats(), hub.drop(agent: id, for: .seconds(5)) ...
///     await hub.shutdown()
public final class EngineHub: Service, Sendable {
    public let configuration: Configuration
    /// The address listened on.
    public let host: String
    /// The port listened on (the real one when 0 was asked for).
    public let port: Int
    private let server: NIOAsyncChannel<EventLoopFuture<Upgrade>, Never>
    private let registry: ConnectionRegistry
    private let directory: AgentDirectory
    private let logger: Logger
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var running = false
        /// The task `start` made to run the hub, awaited by `shutdown()`.
        var ownRun: Task<Void, any Error>?
    }

    private enum Upgrade: Sendable {
        case agent(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, remoteAddress: String)
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
    }

    /// The URL agents connect to: `ws://host:port/agent`.
    public var url: String { "ws://\(hostForURL):\(port)/agent" }
    /// The base URL of the admin endpoints: `http://host:port`.
    public var adminURL: String { "http://\(hostForURL):\(port)" }
    private var hostForURL: String { host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host }

    private init(
        configuration: Configuration,
        port: Int,
        server: NIOAsyncChannel<EventLoopFuture<Upgrade>, Never>,
        registry: ConnectionRegistry,
        directory: AgentDirectory,
        logger: Logger
    ) {
        self.configuration = configuration
        self.host = configuration.host
        self.port = port
        self.server = server
        self.registry = registry
        self.directory = directory
        self.logger = logger
    }

    // MARK: Starting and stopping

    /// Validates the configuration and binds the port; serve with `run()`.
    public static func bind(
        configuration: Configuration,
        logger: Logger = Logger(label: "citrus-engine-sim"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(EngineHubError) -> EngineHub {
        try configuration.validate()
        let registry = ConnectionRegistry()
        let maximumMessageBytes = configuration.maximumMessageBytes
        let server: NIOAsyncChannel<EventLoopFuture<Upgrade>, Never>
        do {
            server = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        registry.accepted(channel)
                        return try Self.configurePipeline(channel, maximumMessageBytes: maximumMessageBytes)
                    }
                }
        } catch {
            throw EngineHubError(
                code: .bindFailed,
                message: "cannot listen on \(configuration.host):\(configuration.port): \(error)"
            )
        }
        let port = server.channel.localAddress?.port ?? configuration.port
        let directory = AgentDirectory(
            connectionString: configuration.databaseURL,
            connectTimeout: configuration.databaseConnectTimeout,
            logger: logger
        )
        let hub = EngineHub(
            configuration: configuration,
            port: port,
            server: server,
            registry: registry,
            directory: directory,
            logger: logger
        )
        logger.info("engine hub listening", metadata: ["url": "\(hub.url)"])
        return hub
    }

    /// Binds and runs the hub in the background until `shutdown()`.
    public static func start(
        configuration: Configuration,
        logger: Logger = Logger(label: "citrus-engine-sim")
    ) async throws(EngineHubError) -> EngineHub {
        let hub = try await bind(configuration: configuration, logger: logger)
        hub.lifecycle.withLock { $0.ownRun = Task { try await hub.run() } }
        return hub
    }

    /// Serves until a graceful shutdown begins, `shutdown()`, or the task is cancelled; then returns.
    /// A graceful shutdown or `shutdown()` sends every agent a close frame (1001) and waits for
    /// the handshake; cancellation cuts the connections. The database session is closed either way.
    public func run() async throws {
        let first = lifecycle.withLock { state in
            defer { state.running = true }
            return !state.running
        }
        guard first else { throw EngineHubError(code: .invalidConfiguration, message: "the hub is already running") }
        do {
            try await withTaskCancellationOrGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    // Beside accepting, not before: an unreachable database must not delay agents' refusals.
                    group.addTask { await self.directory.warmUp() }
                    try await server.executeThenClose { inbound in
                        for try await upgrade in inbound {
                            group.addTask { await self.serve(upgrade) }
                        }
                    }
                }
            } onCancelOrGracefulShutdown: {
                self.beginShutdown()
            }
        } catch  where Task.isCancelled {
            // Cancelled: connections were cut rather than closed politely; that is what was asked.
            logger.debug("engine hub cancelled", metadata: ["error": "\(error)"])
        }
        await directory.close()
        logger.info("engine hub stopped")
    }

    /// Stops listening, closes every connection and waits until the hub has stopped (when it
    /// was started with `start`; otherwise `run()` returns on its own).
    public func shutdown() async {
        beginShutdown()
        let task = lifecycle.withLock { $0.ownRun }
        if let task {
            _ = try? await task.value
        } else if !lifecycle.withLock({ $0.running }) {
            await directory.close()
        }
    }

    private func beginShutdown() {
        registry.beginShutdown()
        server.channel.close(promise: nil)
    }

    // MARK: Operating

    /// Counters and what is open now.
    public func stats() -> EngineHubStats { registry.stats() }

    /// The open agent connections.
    public func agents() -> [AgentConnectionInfo] { registry.agents() }

    /// Closes `agent`'s connections now and refuses its hellos for `duration` (zero: just close).
    /// Returns how many connections were closed.
    @discardableResult
    public func drop(agent: UUID, for duration: Duration = .zero) -> Int {
        let closed = registry.drop(agent, for: duration, at: .now)
        logger.notice(
            "agent dropped by the operator",
            metadata: ["agent_id": "\(agent.lowercased)", "connections": "\(closed)", "refuse_for": "\(duration)"]
        )
        return closed
    }

    /// Whether hellos from `agent` are being refused because of a `drop` that has not run out.
    public func isRefusing(_ agent: UUID) -> Bool {
        registry.isDropped(agent, at: .now)
    }

    // MARK: Connections

    private static func configurePipeline(
        _ channel: any Channel,
        maximumMessageBytes: Int
    ) throws -> EventLoopFuture<Upgrade> {
        let remoteAddress = Self.describe(channel.remoteAddress)
        let upgrader = NIOTypedWebSocketServerUpgrader<Upgrade>(
            maxFrameSize: maximumMessageBytes,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                return channel.eventLoop.makeSucceededFuture(path == "/agent" ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 0,
                            maxAccumulatedFrameCount: 64,
                            maxAccumulatedFrameSize: maximumMessageBytes
                        )
                    )
                    let agent = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                        wrappingChannelSynchronously: channel
                    )
                    return Upgrade.agent(agent, remoteAddress: remoteAddress)
                }
            }
        )
        let configuration = NIOTypedHTTPServerUpgradeConfiguration<Upgrade>(
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in
                channel.eventLoop.makeCompletedFuture {
                    Upgrade.http(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                }
            }
        )
        return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
            configuration: .init(upgradeConfiguration: configuration)
        )
    }

    private func serve(_ upgrade: EventLoopFuture<Upgrade>) async {
        do {
            switch try await upgrade.get() {
            case .agent(let channel, let remoteAddress):
                registry.forget(channel.channel)
                let timing = AgentSession.Timing(
                    helloTimeout: configuration.helloTimeout,
                    idleLimit: configuration.idleLimit,
                    closeGracePeriod: configuration.closeGracePeriod
                )
                await AgentSessionRunner(
                    channel: channel,
                    remoteAddress: remoteAddress,
                    timing: timing,
                    registry: registry,
                    directory: directory,
                    logger: logger
                ).serve()
            case .http(let channel):
                try await serveAdmin(channel)
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
        }
    }

    /// One plain HTTP connection: admin requests, answered one by one; the hub closes it after
    /// each answer so a shutdown never waits for an idle client.
    private func serveAdmin(_ channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                case .body(let chunk):
                    guard body.count + chunk.readableBytes <= 64 * 1024 else {
                        try await write(
                            .error(.payloadTooLarge, "the body is too large"),
                            head: head,
                            to: outbound,
                            channel: channel.channel
                        )
                        return
                    }
                    body += chunk.readableBytesView
                case .end:
                    guard let requestHead = head else { return }
                    let response = respond(method: requestHead.method, uri: requestHead.uri, body: body)
                    try await write(response, head: requestHead, to: outbound, channel: channel.channel)
                    return
                }
            }
        }
    }

    private func write(
        _ response: AdminResponse,
        head: HTTPRequestHead?,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        channel: any Channel
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "connection", value: "close")
        if let allow = response.allow { headers.add(name: "allow", value: allow) }
        let version = head?.version ?? .http1_1
        try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
        if head?.method != .HEAD {
            try await outbound.write(.body(.byteBuffer(channel.allocator.buffer(bytes: response.body))))
        }
        try await outbound.write(.end(nil))
    }

    /// `127.0.0.1:54321` or `[::1]:54321`.
    private static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "unknown" }
        let port = address.port.map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// Runs a hub for the duration of `body` and shuts it down afterwards, also when `body` throws.
public func withEngineHub<Value: Sendable>(
    configuration: EngineHub.Configuration,
    logger: Logger = Logger(label: "citrus-engine-sim"),
    _ body: (EngineHub) async throws -> Value
) async throws -> Value {
    let hub = try await EngineHub.bind(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await hub.run() }
        do {
            let value = try await body(hub)
            await hub.shutdown()
            try await group.waitForAll()
            return value
        } catch {
            await hub.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}
