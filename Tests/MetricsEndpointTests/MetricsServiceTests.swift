import AsyncHTTPClient
import Logging
import MetricsEndpoint
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// The endpoint in-process on 127.0.0.1, port 0, with a registry of its own (swift-metrics is not
/// bootstrapped: that is once per process).
@Suite("Metrics endpoint", .timeLimit(.minutes(1)))
struct MetricsServiceTests {
    /// Runs the endpoint, hands `body` its base URL and the running task, then ends the task.
    static func withEndpoint(
        health: @escaping @Sendable () async -> String? = { nil },
        _ body: (String, HTTPClient, Task<Void, any Error>) async throws -> Void
    ) async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "citrus",
                metricName: "test",
                unitName: "total",
                helpText: "a test"
            )
        ).increment(by: Int64(3))
        let (bound, listening) = AsyncStream.makeStream(of: MetricsAddress.self)
        var service = MetricsService(
            address: MetricsAddress("127.0.0.1:0")!,
            registry: registry,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        service.listening = { listening.yield($0) }
        service.health = health
        let run = Task { [service] in try await service.run() }
        var addresses = bound.makeAsyncIterator()
        let address = try #require(await addresses.next())
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await body("http://\(address)", client, run)
        } catch {
            run.cancel()
            try? await client.shutdown()
            throw error
        }
        run.cancel()
        _ = try? await run.value
        try await client.shutdown()
    }

    static func get(_ client: HTTPClient, _ url: String, method: HTTPMethod = .GET) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    @Test("/metrics exports the registry; /healthz says ok; other paths and methods are refused")
    func answers() async throws {
        try await Self.withEndpoint { base, client, _ in
            let metrics = try await Self.get(client, base + "/metrics")
            #expect(metrics.0 == 200)
            #expect(metrics.1.contains("citrus_test_total 3"))
            #expect(try await Self.get(client, base + "/healthz") == (200, "ok\n"))
            #expect(try await Self.get(client, base + "/other").0 == 404)
            #expect(try await Self.get(client, base + "/metrics", method: .POST).0 == 405)
        }
    }

    @Test("/healthz answers 503 with the reason while the daemon says it is unhealthy, 200 once it is well")
    func unhealthy() async throws {
        let problem = Mutex<String?>("the reconcile loop has made no progress for 1m (limit 1m)")
        try await Self.withEndpoint(health: { problem.withLock { $0 } }) { base, client, _ in
            let sick = try await Self.get(client, base + "/healthz")
            #expect(sick == (503, "unhealthy: the reconcile loop has made no progress for 1m (limit 1m)\n"))
            problem.withLock { $0 = nil }
            #expect(try await Self.get(client, base + "/healthz") == (200, "ok\n"))
        }
    }

    @Test("cancelling its task ends the endpoint, with a kept-alive connection still open")
    func endsWhenCancelled() async throws {
        try await Self.withEndpoint { base, client, run in
            #expect(try await Self.get(client, base + "/healthz").0 == 200)  // the client keeps it open
            run.cancel()
            do {
                try await run.value
            } catch is CancellationError {
                // Ending by throwing CancellationError is ending too.
            }
            // Nothing listens there any more: a new connection is refused at once.
            let port = try #require(Int(base.split(separator: ":").last ?? ""))
            await #expect(throws: (any Error).self) {
                try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port).get().close()
            }
        }
    }

    @Test("graceful shutdown ends the endpoint")
    func endsOnGracefulShutdown() async throws {
        let (bound, listening) = AsyncStream.makeStream(of: MetricsAddress.self)
        var service = MetricsService(
            address: MetricsAddress("127.0.0.1:0")!,
            registry: PrometheusCollectorRegistry(),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        service.listening = { listening.yield($0) }
        try await testGracefulShutdown { trigger in
            let run = Task { [service] in try await service.run() }
            var addresses = bound.makeAsyncIterator()
            _ = await addresses.next()
            trigger.triggerGracefulShutdown()
            try await run.value
        }
    }

    @Test("an address that cannot be listened on is an error naming it")
    func cannotListen() async throws {
        try await Self.withEndpoint { base, _, _ in
            let taken = try #require(MetricsAddress(String(base.dropFirst("http://".count))))
            let second = MetricsService(
                address: taken,
                registry: PrometheusCollectorRegistry(),
                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            )
            let error = await #expect(throws: MetricsEndpointError.self) { try await second.run() }
            #expect(error?.description.hasPrefix("--metrics-address \(taken) cannot be listened on: ") == true)
        }
    }

    @Test("a bind the kernel refuses with EPERM names the unit's SocketBindAllow= line")
    func refusedBindNamesTheUnitLine() throws {
        let address = try #require(MetricsAddress("127.0.0.1:9100"))
        let refused = MetricsEndpointError(address: address, errno: EPERM)
        #expect(
            refused.description
                == "--metrics-address 127.0.0.1:9100 cannot be listened on: Operation not permitted (under systemd: the unit's SocketBindDeny= refuses it unless SocketBindAllow=tcp:9100 names the port)"
        )
        let taken = MetricsEndpointError(address: address, errno: EADDRINUSE)
        #expect(taken.description == "--metrics-address 127.0.0.1:9100 cannot be listened on: Address already in use")
    }

    @Test(
        "addresses are an IP and a port; IPv6 needs brackets; localhost is 127.0.0.1",
        arguments: [
            ("127.0.0.1:9464", "127.0.0.1:9464", true), ("[::1]:9464", "[::1]:9464", true),
            ("localhost:0", "127.0.0.1:0", true), ("0.0.0.0:9464", "0.0.0.0:9464", false),
            ("::1:9464", nil, false), ("[127.0.0.1]:9464", nil, false), ("example.com:9464", nil, false),
            ("127.0.0.1:65536", nil, false), ("127.0.0.1", nil, false),
        ] as [(String, String?, Bool)]
    )
    func addresses(text: String, parsed: String?, loopback: Bool) {
        let address = MetricsAddress(text)
        #expect(address?.description == parsed)
        #expect((address?.isLoopback ?? false) == loopback)
    }
}
