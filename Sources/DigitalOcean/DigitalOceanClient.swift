import BuildVersion
import AsyncHTTPClient
import Foundation
import Timekeeping
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix

/// The API token. Its `description` is redacted so it cannot leak through logs or interpolation.
public struct DigitalOceanToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    public init(_ value: String) {
        self.value = value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var description: String { "<redacted token>" }
    public var debugDescription: String { description }
}

/// A client for the DigitalOcean v2 droplet endpoints.
///
/// - Reads (`listDroplets`, `droplet(id:)`) are retried on 429, 5xx and transport errors with capped
///   exponential backoff and jitter, a bounded number of times.
/// - `createDroplet` is sent exactly once: DigitalOcean has no idempotency key, so a resend could make
///   a second droplet. A lost or 5xx answer is reported as `.outcomeUnknown`.
/// - `deleteDroplet` is retried like a read: it is idempotent, and a 404 on a retry means the droplet is
///   gone (`.alreadyGone`), which is what the caller wanted either way.
/// - Every request first waits on the shared ``RateBudget``; every response feeds it.
public struct DigitalOceanClient: Sendable {
    public static let defaultVersion = BuildVersion.current

    public struct RetryPolicy: Sendable {
        /// Attempts in total for reads and deletes (creates always get exactly one).
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
    private let token: TokenHolder
    /// Shared by every copy of this client; pass the same one to clients that share a token.
    public let rateBudget: RateBudget
    private let clock: any DaemonClock
    private let httpClient: HTTPClient
    private let ownsHTTPClient: Bool
    private let logger: Logger
    private let transportLogger: Logger
    private let baseURL: String

    /// Creates a client with its own connection pool; call ``shutdown()`` when done.
    public init(
        configuration: Configuration,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
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
            logger: logger
        )
    }

    /// Uses an existing `HTTPClient`, which the caller keeps owning.
    public init(
        configuration: Configuration,
        httpClient: HTTPClient,
        rateBudget: RateBudget = RateBudget(),
        clock: any DaemonClock = SystemClock(),
        logger: Logger
    ) {
        self.init(
            configuration: configuration,
            httpClient: httpClient,
            ownsHTTPClient: false,
            rateBudget: rateBudget,
            clock: clock,
            logger: logger
        )
    }

    private init(
        configuration: Configuration,
        httpClient: HTTPClient,
        ownsHTTPClient: Bool,
        rateBudget: RateBudget,
        clock: any DaemonClock,
        logger: Logger
    ) {
        self.configuration = configuration
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

    // MARK: - Operations

    /// `POST /v2/droplets` with a single `name`. Validates locally first; sent once, never resent.
    ///
    /// `gate` is the caller's last word: see ``SendGate``. When it says no, nothing is sent and the
    /// call throws `.withdrawn`.
    public func createDroplet(
        _ request: DropletCreateRequest,
        gate: SendGate = .open
    ) async throws(DigitalOceanError) -> CreatedDroplet {
        do {
            return try await sendCreate(request, gate: gate)
        } catch {
            throw request.redacting(error)  // an answer may echo the body, user_data included
        }
    }

    private func sendCreate(
        _ request: DropletCreateRequest,
        gate: SendGate
    ) async throws(DigitalOceanError) -> CreatedDroplet {
        try request.validate()
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw .localValidation("could not encode the create request: \(error)")
        }
        let response = try await perform(
            .POST,
            "/v2/droplets",
            body: body,
            kind: .create,
            gate: gate,
            secrets: request.secrets
        )
        do {
            let decoded = try DigitalOceanJSON.decoder().decode(DropletCreateResponse.self, from: response.body)
            return CreatedDroplet(
                droplet: decoded.droplet,
                actions: decoded.links?.actions ?? [],
                requestID: response.requestID
            )
        } catch {
            // Accepted, but we cannot read the id: the droplet exists and we do not know which it is.
            var failure = DigitalOceanError(
                code: .outcomeUnknown,
                message:
                    "the create was accepted (HTTP \(response.status)) but its answer could not be read; look for the droplet by tag before creating again"
            )
            failure.operation = "POST /v2/droplets"
            failure.httpStatus = response.status
            failure.requestID = response.requestID
            failure.underlying = ErrorText.capped(scrubbed(String(describing: error), secrets: request.secrets))
            throw failure
        }
    }

    /// `GET /v2/droplets?tag_name=…&per_page=200`, following `links.pages.next` until there is none.
    /// With `tag == nil`, lists every (non-GPU) droplet of the account.
    public func listDroplets(tag: String?) async throws(DigitalOceanError) -> [Droplet] {
        try await listDropletPages(tag: tag).droplets
    }

    /// `listDroplets(tag:)`, with the number of pages it took. One page is one consistent answer;
    /// several pages can miss a droplet that shifted between them while they were read.
    public func listDropletPages(tag: String?) async throws(DigitalOceanError) -> (droplets: [Droplet], pages: Int) {
        if let tag { try DropletCreateRequest.validateTag(tag) }
        var query = [("per_page", String(configuration.pageSize))]
        if let tag { query.insert(("tag_name", tag), at: 0) }
        var pathAndQuery = "/v2/droplets?" + Self.encodeQuery(query)
        var droplets: [Droplet] = []
        var seen: Set<String> = []
        for pageNumber in 1...max(1, configuration.maximumPages) {
            seen.insert(pathAndQuery)
            let response = try await perform(.GET, pathAndQuery, body: nil, kind: .read)
            let page: DropletListResponse
            do {
                page = try DigitalOceanJSON.decoder().decode(DropletListResponse.self, from: response.body)
            } catch {
                throw undecodable(error, operation: "GET /v2/droplets", response: response)
            }
            droplets.append(contentsOf: page.droplets ?? [])
            guard let next = page.links?.pages?.next, !next.isEmpty else { return (droplets, pageNumber) }
            guard let nextPath = Self.pathAndQuery(of: next), nextPath.hasPrefix("/v2/droplets") else {
                var failure = DigitalOceanError(
                    code: .server,
                    message: "page \(pageNumber) links to an unexpected next page: \(ErrorText.capped(next))"
                )
                failure.operation = "GET /v2/droplets"
                throw failure
            }
            if seen.contains(nextPath) {
                var failure = DigitalOceanError(
                    code: .server,
                    message: "page \(pageNumber) links back to a page already read: \(ErrorText.capped(next))"
                )
                failure.operation = "GET /v2/droplets"
                throw failure
            }
            pathAndQuery = nextPath
        }
        var failure = DigitalOceanError(
            code: .server,
            message: "the droplet list did not end within \(configuration.maximumPages) pages"
        )
        failure.operation = "GET /v2/droplets"
        throw failure
    }

    /// `GET /v2/droplets/{id}`. A missing droplet throws `.notFound`.
    public func droplet(id: Int64) async throws(DigitalOceanError) -> Droplet {
        let response = try await perform(.GET, "/v2/droplets/\(id)", body: nil, kind: .read)
        do {
            return try DigitalOceanJSON.decoder().decode(DropletResponse.self, from: response.body).droplet
        } catch {
            throw undecodable(error, operation: "GET /v2/droplets/\(id)", response: response)
        }
    }

    /// `DELETE /v2/droplets/{id}`: 204 → `.deleted`, 404 → `.alreadyGone`.
    public func deleteDroplet(id: Int64) async throws(DigitalOceanError) -> DeleteOutcome {
        do {
            _ = try await perform(.DELETE, "/v2/droplets/\(id)", body: nil, kind: .delete)
            return .deleted
        } catch  where error.code == .notFound {
            return .alreadyGone
        }
    }

    // MARK: - Transport

    enum Kind {
        case read, create, delete

        var priority: RequestPriority { self == .read ? .read : .mutation }
        var retries: Bool { self != .create }
    }

    struct Response {
        var status: Int
        var body: ByteBuffer
        var requestID: String?
    }

    /// `secrets`: texts of this request's body that no error may quote (a create's user_data
    /// secrets); like the token, they are redacted from DigitalOcean's words before those are cut
    /// to length, so no cut can leave part of one behind.
    private func perform(
        _ method: HTTPMethod,
        _ pathAndQuery: String,
        body: Data?,
        kind: Kind,
        gate: SendGate? = nil,
        secrets: [String] = []
    ) async throws(DigitalOceanError) -> Response {
        let operation =
            "\(method.rawValue) \(pathAndQuery.split(separator: "?", maxSplits: 1).first.map(String.init) ?? pathAndQuery)"
        let maximumAttempts = kind.retries ? max(1, configuration.retry.maximumAttempts) : 1
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await performOnce(
                    method,
                    pathAndQuery,
                    body: body,
                    kind: kind,
                    operation: operation,
                    gate: gate,
                    secrets: secrets
                )
            } catch var failure {
                // Defence in depth: no wording of ours quotes the token, and none of theirs may.
                failure = failure.redacting(token: token.current.value).redacting(token: configuration.token.value)
                failure.attempts = attempt
                guard kind.retries, attempt < maximumAttempts, failure.isTransient, !Task.isCancelled else {
                    throw failure
                }
                var delay = backoff(attempt: attempt)
                if failure.code == .rateLimited {
                    // The budget holds every caller until the pause ends; give up if that is too far away.
                    let until = await rateBudget.earliestStart(priority: kind.priority) ?? clock.now()
                    let wait = until.timeIntervalSince(clock.now())
                    if wait > configuration.retry.maximumRateLimitWait.timeInterval { throw failure }
                    delay = .milliseconds(Int64.random(in: 0...100))
                }
                logger.notice(
                    "retrying DigitalOcean request",
                    metadata: [
                        "do.operation": "\(operation)", "do.attempt": "\(attempt)", "do.error": "\(failure)",
                        "do.backoff": "\(DurationText.format(delay))",
                    ]
                )
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    throw failure
                }
            }
        }
    }

    /// Capped exponential backoff with jitter: a random wait in [d/2, d], d = initial·2^(attempt-1).
    func backoff(attempt: Int) -> Duration {
        let initial = configuration.retry.initialBackoff.timeInterval
        let cap = configuration.retry.maximumBackoff.timeInterval
        let ceiling = min(cap, initial * pow(2, Double(min(attempt - 1, 30))))
        let seconds = Double.random(in: (ceiling / 2)...max(ceiling / 2, ceiling))
        return .milliseconds(Int64(seconds * 1000))
    }

    private func performOnce(
        _ method: HTTPMethod,
        _ pathAndQuery: String,
        body: Data?,
        kind: Kind,
        operation: String,
        gate: SendGate?,
        secrets: [String]
    ) async throws(DigitalOceanError) -> Response {
        // Waiting in line is for pacing; a wait longer than this is reported instead (the hourly
        // limit can mean an hour), and the caller tries again later.
        if let start = await rateBudget.earliestStart(priority: kind.priority),
            start.timeIntervalSince(clock.now()) > configuration.retry.maximumRateLimitWait.timeInterval
        {
            var failure = DigitalOceanError(
                code: .rateLimited,
                message: "the request budget is spent until \(start); not sending before then"
            )
            failure.operation = operation
            failure.rateLimitResetAt = start
            throw failure
        }
        let permit: RateBudget.Permit
        do {
            permit = try await rateBudget.acquire(priority: kind.priority)
        } catch {
            var failure = DigitalOceanError(code: .transport, message: "cancelled while waiting for the rate limit")
            failure.operation = operation
            throw failure
        }
        if let gate, !(await gate.prepare()) {
            await rateBudget.finished(permit)
            throw Self.withdrawn(operation)
        }
        var request = HTTPClientRequest(url: baseURL + pathAndQuery)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token.current.value)")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        // The last check, with nothing between it and the send that could suspend this task.
        if let gate, !gate.stillMaySend() {
            await rateBudget.finished(permit)
            throw Self.withdrawn(operation)
        }
        let started = ContinuousClock.now
        let status: Int
        let headers: HTTPHeaders
        let responseBody: ByteBuffer
        do {
            let response = try await httpClient.execute(
                request,
                deadline: .now() + .init(configuration.requestTimeout),
                logger: transportLogger
            )
            status = Int(response.status.code)
            headers = response.headers
            responseBody = try await response.body.collect(upTo: configuration.maximumResponseBytes)
        } catch {
            await rateBudget.finished(permit)
            DigitalOceanMetrics.response(operation: operation, status: nil)
            throw transportFailure(error, kind: kind, operation: operation)
        }
        DigitalOceanMetrics.response(operation: operation, status: status)
        let rate = RateLimitHeaders(headers: headers.map { (name: $0.name, value: $0.value) })
        let headerRequestID = headers.first(name: "x-request-id")
        logger.debug(
            "DigitalOcean response",
            metadata: [
                "do.operation": "\(operation)", "do.status": "\(status)",
                "do.request_id": "\(headerRequestID ?? "-")",
                "do.elapsed": "\(DurationText.format(ContinuousClock.now - started))",
                "do.ratelimit_remaining": "\(rate.remaining.map(String.init) ?? "-")",
            ]
        )
        if (200..<300).contains(status) {
            await rateBudget.observe(rate, for: permit)
            return Response(status: status, body: responseBody, requestID: headerRequestID)
        }

        let apiError = try? JSONDecoder().decode(APIErrorBody.self, from: responseBody)
        var failure = DigitalOceanError(code: .server, message: "")
        failure.operation = operation
        failure.httpStatus = status
        failure.apiErrorID = apiError?.id.map { ErrorText.capped($0, limit: 128) }
        failure.requestID = (apiError?.requestID ?? headerRequestID).map { ErrorText.capped($0, limit: 128) }
        // DigitalOcean's words, as many as an operator reads: the rest would only bloat last_error.
        let detail =
            apiError?.message.map { ErrorText.capped(scrubbed($0, secrets: secrets)) }
            ?? "HTTP \(status) without a DigitalOcean error body"
        switch status {
        case 429:
            DigitalOceanMetrics.rateLimited(perMinute: rate.retryAfter != nil)
            let until = await rateBudget.rateLimited(rate, for: permit)
            failure.code = .rateLimited
            failure.retryAfter = rate.retryAfter
            failure.rateLimitResetAt = rate.reset
            failure.message =
                rate.retryAfter != nil
                ? "the per-minute request limit is exhausted (\(detail)); every call waits until \(until)"
                : "the hourly request limit is exhausted (\(detail)); every call waits until \(until)"
        case 401:
            await rateBudget.observe(rate, for: permit)
            failure.code = .unauthorized
            failure.message = "the token was refused (\(detail)); check that it is valid and not revoked"
        case 403:
            await rateBudget.observe(rate, for: permit)
            failure.code = .unauthorized
            failure.message =
                "the token lacks a permission (\(detail)); it needs droplet:create, droplet:read, droplet:delete, tag:create and tag:read"
        case 404:
            await rateBudget.observe(rate, for: permit)
            failure.code = .notFound
            failure.message = detail
        case 500...:
            await rateBudget.observe(rate, for: permit)
            if kind == .create {
                failure.code = .outcomeUnknown
                failure.message =
                    "DigitalOcean answered the create with HTTP \(status) (\(detail)); the droplet may or may not exist, look for it by tag before creating again"
            } else {
                failure.code = .server
                failure.message = detail
            }
        default:
            // 400, 422 and any other 4xx: the request itself is at fault.
            await rateBudget.observe(rate, for: permit)
            failure.code = .validation
            failure.message = detail
        }
        throw failure
    }

    static func withdrawn(_ operation: String) -> DigitalOceanError {
        var failure = DigitalOceanError(code: .withdrawn, message: "withdrawn before sending; nothing was sent")
        failure.operation = operation
        return failure
    }

    private func transportFailure(_ error: any Error, kind: Kind, operation: String) -> DigitalOceanError {
        var failure = DigitalOceanError(code: .transport, message: "")
        failure.operation = operation
        // The error's type only: its description may quote the request, headers and all.
        failure.underlying = String(describing: type(of: error))
        let neverSent = Self.failedBeforeSending(error)
        if kind == .create && !neverSent {
            failure.code = .outcomeUnknown
            failure.message =
                "the create was sent but no answer came (\(Self.summary(of: error))); the droplet may or may not exist, look for it by tag before creating again"
        } else {
            failure.message = "could not reach DigitalOcean at \(baseURL): \(Self.summary(of: error))"
        }
        return failure
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

    /// `text` without the token or any of `secrets`: done before anything is cut to length.
    private func scrubbed(_ text: String, secrets: [String]) -> String {
        ([token.current.value, configuration.token.value] + secrets).reduce(text) { text, secret in
            ErrorText.redacting(secret, in: text)
        }
    }

    static func summary(of error: any Error) -> String {
        ErrorText.transportSummary(of: error)
    }

    private func undecodable(_ error: any Error, operation: String, response: Response) -> DigitalOceanError {
        var failure = DigitalOceanError(
            code: .server,
            message: "the answer could not be decoded: \(ErrorText.capped("\(error)"))"
        )
        failure.operation = operation
        failure.httpStatus = response.status
        failure.requestID = response.requestID
        return failure
    }

    // MARK: - URLs

    static func encodeQuery(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:")
        return items.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
    }

    /// The path and query of a link. Links are followed against the configured base URL so that the
    /// token only ever goes to that host.
    static func pathAndQuery(of link: String) -> String? {
        guard let components = URLComponents(string: link) else { return nil }
        let path = components.percentEncodedPath
        guard path.hasPrefix("/") else { return nil }
        if let query = components.percentEncodedQuery { return path + "?" + query }
        return path
    }
}
