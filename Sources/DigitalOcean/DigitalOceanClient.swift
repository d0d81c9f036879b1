import BuildVersion
import AsyncHTTPClient
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText
import Timekeeping
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
import NIOPosix

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
    let httpClient: HTTPClient
    let ownsHTTPClient: Bool
    let logger: Logger
    let transportLogger: Logger
    let baseURL: String

    /// Creates a client with its own connection pool; call ``shutdown()`` when done.
    public init(
        configuration: Configuration,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        logger: Logger
    ) {
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .init(configuration.connectTimeout), read: nil)
        // Redirects would carry the token to wherever they point.
        http.redirectConfiguration = .disallow
        http.httpVersion = .automatic
        self.init(
            configuration: configuration,
            httpClient: HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http),
            ownsHTTPClient: true,
            rateBudget: rateBudget,
            clock: clock,
            waits: waits,
            logger: logger
        )
    }

    /// Uses an existing `HTTPClient`, which the caller keeps owning.
    public init(
        configuration: Configuration,
        httpClient: HTTPClient,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        logger: Logger
    ) {
        self.init(
            configuration: configuration,
            httpClient: httpClient,
            ownsHTTPClient: false,
            rateBudget: rateBudget,
            clock: clock,
            waits: waits,
            logger: logger
        )
    }

    private init(
        configuration: Configuration,
        httpClient: HTTPClient,
        ownsHTTPClient: Bool,
        rateBudget: RateBudget,
        clock: any DaemonClock,
        waits: BoundedWaits?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.waits = waits
        self.token = TokenHolder(configuration.token)
        self.clock = clock
        self.httpClient = httpClient
        self.ownsHTTPClient = ownsHTTPClient
        self.rateBudget = rateBudget
        self.logger = logger
        // AsyncHTTPClient's trace level dumps the bytes on the wire, a create's user_data (an
        // agent's key) and the Authorization header among them: never below debug for it. Always
        // set, so that a level changed later (a reload) cannot take it below debug either.
        var transportLogger = logger
        transportLogger.logLevel = max(transportLogger.logLevel, .debug)
        self.transportLogger = transportLogger
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
    }

    /// Sends `newToken` with every request from now on (a rotated token, on reload). Requests
    /// already sent keep the token they were sent with; none is dropped or failed by the change.
    /// Returns whether the token changed.
    @discardableResult
    public func replaceToken(_ newToken: DigitalOceanToken) -> Bool {
        token.replace(with: newToken)
    }

    /// Closes the connection pool if this client created it.
    public func shutdown() async throws {
        if ownsHTTPClient { try await httpClient.shutdown() }
    }
}
