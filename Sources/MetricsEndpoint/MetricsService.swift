#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The metrics endpoint: a small HTTP/1.1 server (SwiftNIO) answering `GET /metrics` with the
/// Prometheus text exposition of everything recorded through swift-metrics, and `GET /healthz`:
/// `200 ok`, or `503` with the reason `health` gives (the loop has made no progress). It binds when it starts; an address it cannot bind is a ``MetricsEndpointError``
/// (a configuration error). It ends on graceful shutdown or cancellation, closing the listener
/// and every connection still open.
public struct MetricsService: Service {
    let address: MetricsAddress
    let registry: PrometheusCollectorRegistry
    /// Brings time-dependent values (ages, the rate budget) up to date before each export.
    let refresh: @Sendable () async -> Void
    let logger: Logger
    /// Connections served at once; more are closed on arrival (a scraper needs one).
    public var maximumConnections = 16
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// Told the address once it listens (with the port the system chose when 0 was asked for).
    public var listening: @Sendable (MetricsAddress) -> Void = { _ in }
    /// Why the daemon is unhealthy now, or nil when it is well; asked by each `GET /healthz`.
    public var health: @Sendable () async -> String? = { nil }

    /// An endpoint exporting `registry`, which `refresh` brings up to date before each export.
    public init(
        address: MetricsAddress,
        registry: PrometheusCollectorRegistry,
        logger: Logger,
        refresh: @escaping @Sendable () async -> Void = {}
    ) {
        self.address = address
        self.registry = registry
        self.logger = logger
        self.refresh = refresh
    }

    /// Bootstraps swift-metrics with a Prometheus registry (once per process, before anything is
    /// recorded) and returns the service that exports it.
    public static func bootstrap(
        address: MetricsAddress,
        logger: Logger,
        refresh: @escaping @Sendable () async -> Void
    ) -> MetricsService {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // A pass can wait minutes in the rate budget; an agent has up to --bootstrap-timeout.
        factory.durationHistogramBuckets = [
            "citrus_pass_duration_seconds": [
                .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500),
                .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
            ],
            "citrus_agent_bootstrap_seconds": [
                .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(180), .seconds(300),
                .seconds(600),
                .seconds(900), .seconds(1800), .seconds(3600),
            ],
        ]
        MetricsSystem.bootstrap(factory)
        if !address.isLoopback {
            logger.warning(
                "the metrics endpoint listens on \(address), which is not a loopback address: anyone who can reach it can read the fleet's counts"
            )
        }
        return MetricsService(address: address, registry: registry, logger: logger, refresh: refresh)
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    public func run() async throws {
        let idleTimeout = self.idleTimeout
        let server: NIOAsyncChannel<Connection, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 16)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            guard let error = error as? IOError else {
                throw MetricsEndpointError(address: address, reason: "\(error)")
            }
            throw MetricsEndpointError(address: address, errno: error.errnoCode)
        }
        var bound = address
        if let port = server.channel.localAddress?.port { bound.port = port }  // the real one when 0 was asked for
        logger.notice("serving metrics at http://\(bound)/metrics")
        listening(bound)

        let open = ConnectionCount()
        let maximumConnections = self.maximumConnections
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        guard open.admit(maximum: maximumConnections) else {
                            connection.channel.close(promise: nil)
                            continue
                        }
                        group.addTask {
                            await serve(connection)
                            open.leave()
                        }
                    }
                }
                // The listener is closed: end the connections still open (their tasks are cancelled).
                group.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        logger.info("metrics endpoint stopped")
    }

    /// Answers the requests of one connection until it closes, asks to close, or is cancelled.
    private func serve(_ connection: Connection) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let received):
                    head = received
                case .body:
                    continue  // no endpoint takes a body
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let (status, headers, body) = await respond(to: request)
                    var responseHeaders = HTTPHeaders(headers)
                    responseHeaders.add(name: "content-length", value: String(body.count))
                    responseHeaders.add(name: "connection", value: request.isKeepAlive ? "keep-alive" : "close")
                    try await outbound.write(
                        .head(HTTPResponseHead(version: .http1_1, status: status, headers: responseHeaders))
                    )
                    if request.method != .HEAD && !body.isEmpty {
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
                    }
                    try await outbound.write(.end(nil))
                    if !request.isKeepAlive { return }
                }
            }
        }
    }

    private func respond(to request: HTTPRequestHead) async -> (HTTPResponseStatus, [(String, String)], [UInt8]) {
        let path =
            request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
            ?? request.uri
        let text = ("content-type", "text/plain; charset=utf-8")
        guard path == "/metrics" || path == "/healthz" else {
            return (.notFound, [text], Array("not found; try /metrics or /healthz\n".utf8))
        }
        guard request.method == .GET || request.method == .HEAD else {
            return (.methodNotAllowed, [text, ("allow", "GET, HEAD")], Array("method not allowed\n".utf8))
        }
        if path == "/healthz" {
            guard let problem = await health() else { return (.ok, [text], Array("ok\n".utf8)) }
            return (.serviceUnavailable, [text], Array("unhealthy: \(problem)\n".utf8))
        }
        await refresh()
        var body: [UInt8] = []
        registry.emit(into: &body)
        return (.ok, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], body)
    }
}

/// Connections being served, against `maximumConnections`.
private final class ConnectionCount: Sendable {
    private let count = Mutex(0)

    func admit(maximum: Int) -> Bool {
        count.withLock { count in
            guard count < maximum else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}

/// Closes a connection when `IdleStateHandler` says it has been silent too long.
private final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// The endpoint's address cannot be listened on (in use, not this machine's, not permitted).
public struct MetricsEndpointError: Error, CustomStringConvertible, Sendable {
    public var address: MetricsAddress
    /// The system's words for why.
    public var reason: String

    public var description: String { "--metrics-address \(address) cannot be listened on: \(reason)" }

    public init(address: MetricsAddress, reason: String) {
        self.address = address
        self.reason = reason
    }

    /// A failed bind's errno, in the system's words. EPERM is what a systemd unit's
    /// `SocketBindDeny=` answers (a bind to a privileged port as non-root is EACCES), so it says
    /// which line lets the port through.
    public init(address: MetricsAddress, errno code: CInt) {
        var reason = String(cString: strerror(code))
        if code == EPERM {
            reason +=
                " (under systemd: the unit's SocketBindDeny= refuses it unless SocketBindAllow=tcp:\(address.port) names the port)"
        }
        self.init(address: address, reason: reason)
    }
}
