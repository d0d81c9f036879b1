import BuildVersion
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText
import Timekeeping
import Logging

/// The API token. Its `description` is redacted so it cannot leak through logs or interpolation.
public struct DigitalOceanToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    public init(_ value: String) {
        self.value = value.trimmingWhitespace()
    }

    public var description: String { "<redacted token>" }
    public var debugDescription: String { description }
}

/// A client for the DigitalOcean v2 droplet and droplet action endpoints.
///
/// - Reads (`listDroplets`, `droplet(id:)`, `action(id:)`, `dropletActions(dropletID:)`) are retried on
///   429, 5xx and transport errors with capped exponential backoff and jitter, a bounded number of times.
/// - `createDroplet` and `performDropletAction` are sent exactly once: DigitalOcean has no idempotency
///   key, so a resend could make a second droplet or repeat an action. A lost or 5xx answer is
///   reported as `.outcomeUnknown`.
/// - `deleteDroplet` is retried like a read: it is idempotent, and a 404 on a retry means the droplet is
///   gone (`.alreadyGone`), which is what the caller wanted either way.
/// - Every request first waits on the shared ``RateBudget``; every response feeds it.
public struct DigitalOceanClient: Sendable {
    public static let defaultVersion = BuildVersion.current

    public struct RetryPolicy: Sendable {
        /// Attempts in total for reads and deletes (creates and actions always get exactly one).
        public var maximumAttempts: Int = 5
        public var initialBackoff: Duration = .milliseconds(500)
        public var maximumBackoff: Duration = .seconds(20)
        /// A request the rate budget would hold for longer than this (before sending, or before
        /// retrying a read after a 429) fails with `.rateLimited` instead of waiting (the hourly
        /// limit can mean an hour).
        public var maximumRateLimitWait: Duration = .seconds(120)

        public init() {}
    }

    public struct Configuration: Sendable {
        public var baseURL: String = "https://api.digitalocean.com"
        public var token: DigitalOceanToken
        public var connectTimeout: Duration = .seconds(10)
        /// The whole request: connect, send, wait, and read the body.
        public var requestTimeout: Duration = .seconds(30)
        public var userAgent: String = "citrus-reconciler/\(DigitalOceanClient.defaultVersion)"
        public var retry = RetryPolicy()
        /// `per_page` for lists; 200 is DigitalOcean's maximum.
        public var pageSize: Int = 200
        /// A guard against a server that never stops paginating.
        public var maximumPages: Int = 1000
        /// Responses larger than this are refused.
        public var maximumResponseBytes: Int = 32 * 1024 * 1024

        public init(
            token: DigitalOceanToken,
            baseURL: String = "https://api.digitalocean.com",
            version: String = DigitalOceanClient.defaultVersion
        ) {
            self.token = token
            self.baseURL = baseURL
            self.userAgent = "citrus-reconciler/\(version)"
        }
    }

    /// The configuration the client was made with. Its `token` is the first one: see ``replaceToken(_:)``.
    public let configuration: Configuration
    /// The token requests are sent with; replaced by ``replaceToken(_:)``, shared by every copy.
    let token: TokenHolder
    /// Shared by every copy of this client; pass the same one to clients that share a token.
    public let rateBudget: RateBudget
    /// Where every request and every backoff between retries is registered with its deadline, for
    /// the watchdog (see `BoundedWaits`); nil when nothing watches.
    public let waits: BoundedWaits?
    let clock: any DaemonClock
    /// Draws the jitter of retry delays (a number in `0..<1`): the simulation's comes from its seed.
    let jitter: @Sendable () -> Double
    /// Carries the bytes: HTTPS in the daemon (`DigitalOceanHTTP`), the model in the simulation.
    let transport: any DigitalOceanTransport
    let logger: Logger
    let baseURL: String

    /// A client over `transport` (`DigitalOceanHTTP` makes the daemon's, over HTTPS); call
    /// ``shutdown()`` when done.
    public init(
        configuration: Configuration,
        transport: any DigitalOceanTransport,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger
    ) {
        self.configuration = configuration
        self.jitter = jitter
        self.waits = waits
        self.token = TokenHolder(configuration.token)
        self.clock = clock
        self.transport = transport
        self.rateBudget = rateBudget
        self.logger = logger
        self.baseURL = Self.trimmedBaseURL(configuration.baseURL)
    }

    /// `url` without trailing slashes: paths are appended to it.
    public static func trimmedBaseURL(_ url: String) -> String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Sends `newToken` with every request from now on (a rotated token, on reload). Requests
    /// already sent keep the token they were sent with; none is dropped or failed by the change.
    /// Returns whether the token changed.
    @discardableResult
    public func replaceToken(_ newToken: DigitalOceanToken) -> Bool {
        token.replace(with: newToken)
    }

    /// Releases the transport (an HTTP connection pool the client created).
    public func shutdown() async throws {
        try await transport.shutdown()
    }
}
