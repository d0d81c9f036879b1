import ArgumentParser
import NIOCore

/// The opt-in metrics endpoint (`/metrics` for Prometheus, `/healthz`).
struct MetricsOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at /metrics and a health check at /healthz on this address, such as 127.0.0.1:9464 (env CITRUS_METRICS_ADDRESS; default: off).",
            valueName: "host:port"
        )
    )
    var metricsAddress: String?

    /// Nil when the endpoint is off.
    func address(environment: [String: String]) throws(ConfigurationError) -> MetricsAddress? {
        guard let text = metricsAddress ?? environment["CITRUS_METRICS_ADDRESS"], !text.isEmpty else { return nil }
        guard let address = MetricsAddress(text) else {
            throw ConfigurationError(
                "--metrics-address \"\(text)\" is not an IP address and port such as 127.0.0.1:9464 or [::1]:9464 (port 0 picks a free one)"
            )
        }
        return address
    }
}

/// Where the metrics endpoint listens: an IP address (no name lookups) and a port.
struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464` (127.0.0.1).
    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil  // an IPv6 address needs its brackets, or its port is ambiguous
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard (try? SocketAddress(ipAddress: host, port: port)) != nil else { return nil }
        self.host = host
        self.port = port
    }

    /// 127.0.0.0/8 or ::1: reachable from this machine only.
    var isLoopback: Bool {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return false }
        switch address {
        case .v4(let v4): return (UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24) == 127
        case .v6: return address.ipAddress == "::1"
        default: return false
        }
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
