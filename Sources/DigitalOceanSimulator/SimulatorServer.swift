@_exported import DigitalOceanModel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The simulator behind plain HTTP/1.1 (SwiftNIO). Bind first (the port is known before `run()`),
/// then `run()` serves until the task is cancelled or a graceful shutdown begins. Beside the HTTP
/// server, `run()` runs the droplets' stand-in agents (``SimulatedAgents``) unless `bind` was told
/// `agents: false`.
public final class SimulatorServer: Service, Sendable {
    public let simulator: SimulatedDigitalOcean
    /// The stand-in agents `run()` runs, or nil.
    public let agents: SimulatedAgents?
    /// The address actually bound (the real port when 0 was asked for).
    public let host: String
    public let port: Int
    private let channel: any Channel
    private let connections: ConnectionTracker
    private let logger: Logger

    /// `http://host:port`, the base URL a DigitalOcean client should use.
    public var baseURL: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    private init(
        simulator: SimulatedDigitalOcean,
        agents: SimulatedAgents?,
        host: String,
        port: Int,
        channel: any Channel,
        connections: ConnectionTracker,
        logger: Logger
    ) {
        self.simulator = simulator
        self.agents = agents
        self.host = host
        self.port = port
        self.channel = channel
        self.connections = connections
        self.logger = logger
    }

    /// Binds `host:port` (port 0: an ephemeral port, see ``port``). `agents`: play cloud-init for
    /// droplets created with agent values in `user_data` (``SimulatedAgents``) while `run()` runs.
    public static func bind(
        host: String = "127.0.0.1",
        port: Int = 0,
        simulator: SimulatedDigitalOcean,
        agents: Bool = true,
        logger: Logger = Logger(label: "citrus-do-sim"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SimulatorServer {
        let connections = ConnectionTracker()
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                connections.add(child)
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try child.pipeline.syncOperations.addHandler(SimulatorHTTPHandler(simulator: simulator))
                }
            }
            .bind(host: host, port: port)
            .get()
        let boundPort = channel.localAddress?.port ?? port
        logger.info("simulator listening", metadata: ["host": "\(host)", "port": "\(boundPort)"])
        let runner =
            agents ? SimulatedAgents(simulator: simulator, logger: logger, eventLoopGroup: eventLoopGroup) : nil
        return SimulatorServer(
            simulator: simulator,
            agents: runner,
            host: host,
            port: boundPort,
            channel: channel,
            connections: connections,
            logger: logger
        )
    }

    /// Serves until cancelled or gracefully shut down, then stops the agents, closes every
    /// connection and saves state.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let agents { group.addTask { try? await agents.run() } }
            try await withTaskCancellationOrGracefulShutdownHandler {
                try await channel.closeFuture.get()
            } onCancelOrGracefulShutdown: { [channel] in
                channel.close(promise: nil)
            }
            group.cancelAll()
        }
        await connections.closeAll()
        simulator.saveState()
        logger.info("simulator stopped")
    }

    /// Stops listening (for callers not using a ServiceGroup).
    public func close() async {
        try? await channel.close()
        await connections.closeAll()
    }
}

/// Open connections, so shutdown can close them.
final class ConnectionTracker: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = channels.withLock { $0.removeValue(forKey: key) }
        }
    }

    func closeAll() async {
        let open = channels.withLock { Array($0.values) }
        for channel in open { try? await channel.close() }
    }
}

/// One connection: collects a request, asks the simulator, writes the answer (or hangs up).
final class SimulatorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Enough for a 64 KiB user_data plus the rest of a create body.
    static let maximumBodyBytes = 1024 * 1024

    private let simulator: SimulatedDigitalOcean
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false

    init(simulator: SimulatedDigitalOcean) {
        self.simulator = simulator
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = context.channel.allocator.buffer(capacity: 0)
            self.tooLarge = false
        case .body(var chunk):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maximumBodyBytes {
                tooLarge = true
            } else {
                body?.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            self.head = nil
            self.body = nil
            let keepAlive = head.isKeepAlive
            if tooLarge {
                write(
                    context: context,
                    response: .init(
                        status: 413,
                        headers: [("content-type", "application/json; charset=utf-8")],
                        body: Array(#"{"id":"request_entity_too_large","message":"request body too large"}"#.utf8)
                    ),
                    keepAlive: false
                )
                return
            }
            let request = SimulatedDigitalOcean.Request(
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { (name: $0.name, value: $0.value) },
                body: bytes
            )
            switch simulator.handle(request) {
            case .respond(let response, let delay):
                if delay <= .zero {
                    write(context: context, response: response, keepAlive: keepAlive)
                } else {
                    context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
                        self.write(context: context, response: response, keepAlive: keepAlive)
                    }
                }
            case .dropConnection(let delay):
                if delay <= .zero {
                    context.close(promise: nil)
                } else {
                    context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
                        context.close(promise: nil)
                    }
                }
            }
        }
    }

    private func write(context: ChannelHandlerContext, response: SimulatedDigitalOcean.Response, keepAlive: Bool) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        if response.status == 204 || response.status == 304 {
            headers.remove(name: "content-length")  // no body and no length on 204 (RFC 9110 §8.6)
        } else {
            headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        }
        headers.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: response.status),
            headers: headers
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil
            )
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
