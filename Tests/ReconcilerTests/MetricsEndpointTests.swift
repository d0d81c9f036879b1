import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Testing

/// `--metrics-address`: the real daemon binary serving Prometheus text at /metrics and /healthz on
/// loopback, scraped like Prometheus would. Serialized like the other end-to-end suites.
@Suite("Metrics endpoint, end to end", .serialized)
struct MetricsEndpointTests {
    static let quick = ["--fast-interval", "1s", "--resync-interval", "2s", "--settle-period", "3s"]
    static let metricsFlags = ["--metrics-address", "127.0.0.1:0"]

    @Test(
        "/metrics shows rows by status as in the table, requests, creates, passes, leader and budget; /healthz says ok"
    )
    func metricsReflectTheFleet() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick + Self.metricsFlags)
            defer { daemon.signal(SIGKILL) }
            let endpoint = try await MetricsScrape.endpoint(of: daemon)

            for i in 0..<3 { try await world.insert("metrics-\(i)") }
            try await world.insert("not a valid hostname!")  // failed locally: no request is sent for it
            try await world.converge(timeout: .seconds(60), daemon: daemon)

            // Rows by status: every status, as the table has them, once a pass has seen the table.
            let table = Dictionary(grouping: try await world.rows(), by: \.status).mapValues(\.count)
            #expect(table == ["active": 3, "failed": 1])
            let statuses = [
                "creating", "provisioning", "initializing", "active", "unreachable", "failed", "deleting", "deleted",
            ]
            var metrics: [String: Double] = [:]
            let matches = try await eventually(timeout: .seconds(20), every: .milliseconds(250)) {
                metrics = try MetricsScrape.values(try MetricsScrape.get(endpoint, "/metrics").body)
                return statuses.allSatisfy { metrics["citrus_servers{status=\"\($0)\"}"] == Double(table[$0] ?? 0) }
            }
            #expect(
                matches,
                "rows by status differ from the table \(table): \(metrics.filter { $0.key.hasPrefix("citrus_servers") })"
            )

            #expect(metrics["citrus_leader"] == 1)
            #expect(metrics["citrus_creates_total{outcome=\"accepted\"}"] == 3)
            #expect(metrics["citrus_orphans"] == 0)
            let creates = world.requests(method: "POST", route: "/v2/droplets").count
            #expect(
                metrics["citrus_digitalocean_requests_total{route=\"POST /v2/droplets\",code=\"202\"}"]
                    == Double(creates)
            )
            let minute = try #require(metrics["citrus_digitalocean_budget_remaining{window=\"minute\"}"])
            let hour = try #require(metrics["citrus_digitalocean_budget_remaining{window=\"hour\"}"])
            #expect(minute >= 0 && minute < 250 && hour >= 0 && hour < 5000, "minute \(minute), hour \(hour)")
            let age = try #require(metrics["citrus_last_full_view_age_seconds"])
            #expect(age >= 0 && age < 10, "the last full view is \(age) s old with a resync every 2 s")
            #expect((metrics["citrus_pass_duration_seconds_count{kind=\"full\"}"] ?? 0) >= 1)

            // Counters grow with the passes that follow (a resync every 2 s lists the fleet).
            let passes = try #require(metrics["citrus_passes_total{kind=\"full\",result=\"ok\"}"])
            let lists = try #require(
                metrics["citrus_digitalocean_requests_total{route=\"GET /v2/droplets\",code=\"200\"}"]
            )
            var later: [String: Double] = [:]
            let grew = try await eventually(timeout: .seconds(15), every: .milliseconds(500)) {
                later = try MetricsScrape.values(try MetricsScrape.get(endpoint, "/metrics").body)
                return (later["citrus_passes_total{kind=\"full\",result=\"ok\"}"] ?? 0) > passes
                    && (later["citrus_digitalocean_requests_total{route=\"GET /v2/droplets\",code=\"200\"}"] ?? 0)
                        > lists
            }
            #expect(grew, "passes \(passes) → \(later["citrus_passes_total{kind=\"full\",result=\"ok\"}"] ?? -1)")
            let listsSeen = world.requests(method: "GET", route: "/v2/droplets").filter { $0.status == 200 }.count
            #expect(
                (later["citrus_digitalocean_requests_total{route=\"GET /v2/droplets\",code=\"200\"}"] ?? 0)
                    <= Double(listsSeen)
            )

            if ProcessInfo.processInfo.environment["CITRUS_PRINT_METRICS"] != nil {
                print("figure: /metrics after convergence:\n\(try MetricsScrape.get(endpoint, "/metrics").body)")
            }

            let health = try MetricsScrape.get(endpoint, "/healthz")
            #expect(health.status == 200 && health.body == "ok\n")
            #expect(try MetricsScrape.get(endpoint, "/nothing-here").status == 404)
            #expect(try MetricsScrape.get(endpoint, "/metrics", method: "POST").status == 405)

            // A second daemon asked for the same address refuses to start.
            let second = try world.daemon(
                Self.quick + ["--metrics-address", "127.0.0.1:\(endpoint.port)"],
                name: "second"
            )
            defer { second.signal(SIGKILL) }
            #expect(await second.waitForExit(timeout: .seconds(30)) == 78, "\(second.output.suffix(2000))")
            #expect(
                second.output.contains("--metrics-address 127.0.0.1:\(endpoint.port) cannot be listened on"),
                "\(second.output.suffix(2000))"
            )

            await daemon.stop()
            #expect(daemon.exitStatus == 0, "daemon did not stop cleanly: \(daemon.output.suffix(2000))")
        }
    }

    @Test("a bad --metrics-address or CITRUS_METRICS_ADDRESS exits 78 with one line; a non-loopback one is logged")
    func badAddressesExit78() async throws {
        try await World.with { world in
            for bad in ["127.0.0.1", "127.0.0.1:70000", "metrics.example.com:9464", "::1:9464", "127.0.0.1:port"] {
                let (status, output) = try await world.command(["run", "--metrics-address", bad])
                #expect(status == 78, "\(bad): \(output)")
                let refusals = output.split(separator: "\n").filter { $0.contains("configuration error") }
                #expect(
                    refusals.count == 1
                        && refusals.first?.contains("--metrics-address \"\(bad)\" is not an IP address") == true,
                    "\(bad): \(output)"
                )
            }
            let fromEnvironment = ChildProcess(
                executable: try BuiltProducts.executable(named: "citrus-reconciler"),
                arguments: ["run"] + world.connectionArguments,
                environment: [
                    "PATH": "/usr/bin:/bin", "HOME": world.directory.path, "CITRUS_METRICS_ADDRESS": "nowhere",
                ],
                logFile: world.directory.appendingPathComponent("environment.log")
            )
            try fromEnvironment.start()
            #expect(await fromEnvironment.waitForExit(timeout: .seconds(30)) == 78, "\(fromEnvironment.output)")
            #expect(fromEnvironment.output.contains("--metrics-address \"nowhere\""))

            // Not loopback (TEST-NET-1, which no interface here has): allowed, said so, then it
            // cannot be bound, which is a configuration error too. Nothing is opened.
            let (status, output) = try await world.command([
                "run", "--log-format", "text", "--metrics-address", "192.0.2.1:9464",
            ])
            #expect(status == 78, "\(output)")
            #expect(output.contains("not a loopback address"), "\(output)")
            #expect(output.contains("--metrics-address 192.0.2.1:9464 cannot be listened on"), "\(output)")
        }
    }

    @Test("agent bootstrap durations: one observation per agent that connected, as long as the agent took")
    func agentBootstrapDurations() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.agentBootDelay = .milliseconds(1500)  // after a pass has seen the droplet active
        try await AgentBootstrapTests.with(simulator: configuration) { world, hub in
            let daemon = try world.daemon(AgentBootstrapTests.flags(hub) + Self.metricsFlags)
            defer { daemon.signal(SIGKILL) }
            let endpoint = try await MetricsScrape.endpoint(of: daemon)
            let id = try await world.insert("agent-metrics-1")
            #expect(try await AgentBootstrapTests.waitFor("active", world, id), "\(daemon.output.suffix(3000))")
            var metrics: [String: Double] = [:]
            let observed = try await eventually(timeout: .seconds(10), every: .milliseconds(200)) {
                metrics = try MetricsScrape.values(try MetricsScrape.get(endpoint, "/metrics").body)
                return metrics["citrus_agent_bootstrap_seconds_count"] == 1
            }
            #expect(observed, "\(metrics.filter { $0.key.hasPrefix("citrus_agent") })")
            let seconds = try #require(metrics["citrus_agent_bootstrap_seconds_sum"])
            #expect(
                seconds > 0 && seconds < 6,
                "the agent took \(seconds) s by the histogram; the bootstrap timeout is 6 s"
            )
            #expect(
                metrics["citrus_servers{status=\"active\"}"] == 1
                    || metrics["citrus_servers{status=\"initializing\"}"] == 1
            )
            await daemon.stop()
        }
    }
}

/// A scraper: finds the daemon's metrics port in its log and GETs over loopback with a plain socket.
enum MetricsScrape {
    struct Endpoint: Sendable {
        var host: String
        var port: Int
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The address the daemon logged (`serving metrics at http://127.0.0.1:PORT/metrics`).
    static func endpoint(of daemon: ChildProcess, timeout: Duration = .seconds(30)) async throws -> Endpoint {
        var found: Endpoint?
        _ = await eventually(timeout: timeout, every: .milliseconds(50)) {
            guard let range = daemon.output.range(of: "serving metrics at http://127.0.0.1:") else { return false }
            let digits = daemon.output[range.upperBound...].prefix(while: \.isNumber)
            found = Int(digits).map { Endpoint(host: "127.0.0.1", port: $0) }
            return found != nil
        }
        guard let found else {
            throw Failure(description: "the daemon never said where it serves metrics:\n\(daemon.output.suffix(2000))")
        }
        return found
    }

    /// One request on a fresh connection (`Connection: close`); the status and the body.
    static func get(_ endpoint: Endpoint, _ path: String, method: String = "GET") throws -> (status: Int, body: String)
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        address.sin_addr.s_addr = inet_addr(endpoint.host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect to \(endpoint.port): errno \(errno)") }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(endpoint.host)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else {
            throw Failure(description: "send: errno \(errno)")
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { throw Failure(description: "recv: errno \(errno)") }
            if n == 0 { break }
            response.append(contentsOf: buffer[..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"),
            let status = Int(text.split(separator: " ").dropFirst().first ?? "")
        else {
            throw Failure(description: "not an HTTP response: \(text.prefix(200))")
        }
        return (status, String(text[split.upperBound...]))
    }

    /// Prometheus text → `name{labels}` (as written) → value; comments skipped.
    static func values(_ text: String) throws -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw Failure(description: "not a sample line: \(line)")
            }
            values[String(line[..<space])] = value
        }
        return values
    }
}

/// What the endpoint adds to idle memory: opt-in (`CITRUS_MEASURE_METRICS_RSS=1`, optionally
/// `CITRUS_MEASURE_RUNS` and `CITRUS_MEASURE_IDLE_SECONDS`), since it idles for minutes.
@Suite("Metrics endpoint, idle memory", .serialized)
struct MetricsMemoryMeasurement {
    static let environment = ProcessInfo.processInfo.environment

    @Test(
        "idle RSS with and without --metrics-address (prints the figures)",
        .enabled(if: environment["CITRUS_MEASURE_METRICS_RSS"] != nil)
    )
    func idleResidentSetSize() async throws {
        let runs = Int(Self.environment["CITRUS_MEASURE_RUNS"] ?? "") ?? 3
        let idle = Int(Self.environment["CITRUS_MEASURE_IDLE_SECONDS"] ?? "") ?? 60
        // A full pass every 5 s while idle: the daemon's steady state, a dozen passes per run.
        let flags = ["--resync-interval", "5s", "--fast-interval", "1s", "--settle-period", "3s"]
        try await World.with { world in
            let first = try world.daemon(flags, name: "converge")
            for i in 0..<5 { try await world.insert("idle-\(i)") }
            try await world.converge(timeout: .seconds(60), daemon: first)
            await first.stop()

            var figures: [Bool: [Double]] = [false: [], true: []]
            for run in 0..<runs {
                // Alternate which goes first, so drift over the runs does not favour one side.
                for withMetrics in run % 2 == 0 ? [false, true] : [true, false] {
                    let daemon = try world.daemon(
                        flags + (withMetrics ? MetricsEndpointTests.metricsFlags : []),
                        name: "rss-\(run)-\(withMetrics)"
                    )
                    defer { daemon.signal(SIGKILL) }
                    let endpoint = withMetrics ? try await MetricsScrape.endpoint(of: daemon) : nil
                    let started = ContinuousClock.now
                    while ContinuousClock.now - started < .seconds(idle) {
                        // Scraped like Prometheus does (every 15 s by default; here every 5 s).
                        if let endpoint { #expect(try MetricsScrape.get(endpoint, "/metrics").status == 200) }
                        try await Task.sleep(for: .seconds(5))
                    }
                    let rss = try #require(Self.residentKiB(pid: daemon.pid), "no VmRSS for \(daemon.pid)")
                    figures[withMetrics, default: []].append(Double(rss))
                    print(
                        "figure: run \(run + 1) \(withMetrics ? "with" : "without") --metrics-address: VmRSS \(rss) KiB after \(idle) s idle"
                    )
                    await daemon.stop()
                    #expect(daemon.exitStatus == 0)
                }
            }
            let without = figures[false] ?? []
            let with = figures[true] ?? []
            let (a, b) = (median(without), median(with))
            print(
                "figure: idle VmRSS median without \(Int(a)) KiB (\(without.map { String(Int($0)) }.joined(separator: ", "))), with \(Int(b)) KiB (\(with.map { String(Int($0)) }.joined(separator: ", "))): +\(Int(b - a)) KiB, ratio \(String(format: "%.3f", b / a))"
            )
        }
    }

    /// `VmRSS` of a process, in KiB, from /proc.
    static func residentKiB(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
}
