import AsyncHTTPClient
import DigitalOcean
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Timekeeping

/// The daemon's wire to DigitalOcean: AsyncHTTPClient over HTTPS, redirects refused (they would
/// carry the token to wherever they point).
public struct HTTPTransport: DigitalOceanTransport {
    let httpClient: HTTPClient
    let ownsHTTPClient: Bool
    let baseURL: String
    /// AsyncHTTPClient's trace level dumps the bytes on the wire, a create's user_data (an agent's
    /// key) and the Authorization header among them: never below debug for it. Always set, so that
    /// a level changed later (a reload) cannot take it below debug either.
    let logger: Logger

    /// A transport with its own connection pool, closed by ``shutdown()``.
    public init(baseURL: String, connectTimeout: Duration, logger: Logger) {
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .init(connectTimeout), read: nil)
        http.redirectConfiguration = .disallow
        http.httpVersion = .automatic
        self.init(
            httpClient: HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: http),
            owned: true,
            baseURL: baseURL,
            logger: logger
        )
    }

    /// Uses an existing `HTTPClient`, which the caller keeps owning.
    public init(httpClient: HTTPClient, baseURL: String, logger: Logger) {
        self.init(httpClient: httpClient, owned: false, baseURL: baseURL, logger: logger)
    }

    private init(httpClient: HTTPClient, owned: Bool, baseURL: String, logger: Logger) {
        self.httpClient = httpClient
        self.ownsHTTPClient = owned
        self.baseURL = DigitalOceanClient.trimmedBaseURL(baseURL)
        var logger = logger
        logger.logLevel = max(logger.logLevel, .debug)
        self.logger = logger
    }

    public func send(
        _ request: TransportRequest,
        timeout: Duration
    ) async throws(TransportFailure) -> TransportResponse {
        var outgoing = HTTPClientRequest(url: baseURL + request.pathAndQuery)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for header in request.headers { outgoing.headers.add(name: header.name, value: header.value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await httpClient.execute(outgoing, deadline: .now() + .init(timeout), logger: logger)
            let body = try await response.body.collect(upTo: request.maximumResponseBytes)
            return TransportResponse(
                status: Int(response.status.code),
                headers: response.headers.map { (name: $0.name, value: $0.value) },
                body: Array(body.readableBytesView)
            )
        } catch {
            throw TransportFailure(
                summary: ErrorText.transportSummary(of: error),
                // The error's type only: its description may quote the request, headers and all.
                underlying: String(describing: type(of: error)),
                mayHaveBeenSent: !Self.failedBeforeSending(error)
            )
        }
    }

    public func shutdown() async throws {
        if ownsHTTPClient { try await httpClient.shutdown() }
    }

    /// Errors raised while connecting, before any byte of the request could have been sent.
    static func failedBeforeSending(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let http = error as? HTTPClientError {
            return http == .connectTimeout || http == .invalidURL || http == .emptyHost || http == .emptyScheme
                || http == .alreadyShutdown || http == .getConnectionFromPoolTimeout
                || http.shortDescription.hasPrefix("Invalid header field")  // refused while building the request
        }
        if let io = error as? IOError { return io.errnoCode == ECONNREFUSED }
        return false
    }
}

extension DigitalOceanClient {
    /// A client over HTTPS with its own connection pool; call ``shutdown()`` when done.
    public init(
        configuration: Configuration,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        logger: Logger
    ) {
        self.init(
            configuration: configuration,
            transport: HTTPTransport(
                baseURL: configuration.baseURL,
                connectTimeout: configuration.connectTimeout,
                logger: logger
            ),
            rateBudget: rateBudget,
            clock: clock,
            waits: waits,
            logger: logger
        )
    }

    /// A client over an existing `HTTPClient`, which the caller keeps owning.
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
            transport: HTTPTransport(httpClient: httpClient, baseURL: configuration.baseURL, logger: logger),
            rateBudget: rateBudget,
            clock: clock,
            waits: waits,
            logger: logger
        )
    }
}
