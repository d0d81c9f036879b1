import Foundation
import Postgres

extension EngineHub {
    /// Where the hub listens, where it finds `agents`, and how long it waits for agents.
    public struct Configuration: Sendable {
        /// Address to listen on. Only loopback unless `allowRemote` is set.
        public var host = "127.0.0.1"
        /// Port to listen on; 0 picks a free one (see `EngineHub.port`).
        public var port = 0
        /// Allows listening on an address other than loopback. The stand-in has no TLS.
        public var allowRemote = false
        /// libpq conninfo string or URI of the database holding `agents`; nil uses libpq's defaults.
        public var databaseURL: String?
        /// A connection whose first message is not a hello within this long is closed with 4400.
        public var helloTimeout: Duration = .seconds(10)
        /// An authenticated connection that sends nothing for this long is closed (3 × the 30 s contract).
        public var idleLimit: Duration = .seconds(90)
        /// After the hub sends a close frame, how long it waits for the agent's before hanging up.
        public var closeGracePeriod: Duration = .seconds(1)
        /// How long one attempt to reach the database may take before the hub gives up on it.
        public var databaseConnectTimeout: Duration = .seconds(5)
        /// Largest message (after reassembling fragments) an agent may send.
        public var maximumMessageBytes = 64 * 1024

        public init(host: String = "127.0.0.1", port: Int = 0, databaseURL: String? = nil) {
            self.host = host
            self.port = port
            self.databaseURL = databaseURL
        }

        /// Checks everything that can be checked without the network; throws a configuration error.
        public func validate() throws(EngineHubError) {
            guard (0...65535).contains(port) else {
                throw EngineHubError(code: .invalidConfiguration, message: "port \(port) is not between 0 and 65535")
            }
            guard !host.isEmpty else {
                throw EngineHubError(code: .invalidConfiguration, message: "the listen address is empty")
            }
            if !allowRemote && !ListenAddress.isLoopback(host) {
                throw EngineHubError(
                    code: .remoteListenNotAllowed,
                    message:
                        "refusing to listen on \(host), which is not a loopback address: the stand-in hub has no TLS; "
                        + "allow it explicitly (allowRemote / --allow-remote) if that is really meant"
                )
            }
            for (name, value) in [
                ("hello timeout", helloTimeout), ("idle limit", idleLimit), ("close grace period", closeGracePeriod),
                ("database connect timeout", databaseConnectTimeout),
            ] where value <= .zero {
                throw EngineHubError(code: .invalidConfiguration, message: "the \(name) must be longer than zero")
            }
            guard maximumMessageBytes >= 256 else {
                throw EngineHubError(
                    code: .invalidConfiguration,
                    message: "the maximum message size must be at least 256 bytes"
                )
            }
            do {
                _ = try ConnectionString(databaseURL)
            } catch {
                throw EngineHubError(code: .invalidConfiguration, message: "database URL: \(error.message)")
            }
        }
    }
}

/// What went wrong starting the hub. `description` is one line an operator can act on; it never
/// holds a database password (connection strings are redacted by `Postgres`).
public struct EngineHubError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A value in the configuration is unusable.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The listen address is not loopback and `allowRemote` was not given.
        public static let remoteListenNotAllowed = Code("remoteListenNotAllowed")
        /// The address could not be bound (in use, not local, permission).
        public static let bindFailed = Code("bindFailed")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Whether the operator must change the configuration (exit 78) rather than retry.
    public var isConfigurationError: Bool { code == .invalidConfiguration || code == .remoteListenNotAllowed }
}

/// Which listen addresses count as loopback.
enum ListenAddress {
    /// `localhost`, 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8. A name other than `localhost`
    /// is not resolved: it may lead anywhere, so it needs `allowRemote`.
    static func isLoopback(_ host: String) -> Bool {
        var address = host.lowercased()
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        if address == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            let mapped = bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff
            return mapped && bytes[12] == 127
        }
        return false
    }
}
