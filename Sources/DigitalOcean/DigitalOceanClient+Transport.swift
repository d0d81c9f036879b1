#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// Sending one request: the rate budget, the caller's last check, the wire, and what the answer
/// means.
extension DigitalOceanClient {
    struct Response {
        var status: Int
        var body: [UInt8]
        /// `x-request-id`.
        var requestID: String?
    }

    /// Sends a request, again after a transient failure when `kind` allows it.
    ///
    /// `secrets`: texts of this request's body that no error may quote (a create's user_data
    /// secrets); like the token, they are redacted from DigitalOcean's words before those are cut
    /// to length, so no cut can leave part of one behind.
    func perform(
        _ method: RequestMethod,
        _ pathAndQuery: String,
        body: Data? = nil,
        kind: RequestKind,
        clearance: SendClearance? = nil,
        secrets: [String] = []
    ) async throws(DigitalOceanError) -> Response {
        let path = pathAndQuery.split(separator: "?", maxSplits: 1).first.map(String.init) ?? pathAndQuery
        let operation = "\(method.rawValue) \(path)"
        // A cleared request is sent once: its permit is spent, and its caller looks before each send.
        let maximumAttempts = kind.resendable && clearance == nil ? max(1, configuration.retry.maximumAttempts) : 1
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
                    clearance: clearance,
                    secrets: secrets
                )
            } catch var failure {
                // Defence in depth: no wording of ours quotes the token, and none of theirs may.
                failure = failure.redacting(token: token.current.value).redacting(token: configuration.token.value)
                failure.attempts = attempt
                guard attempt < maximumAttempts, failure.isTransient, !Task.isCancelled else {
                    throw failure
                }
                var delay = backoff(attempt: attempt)
                if failure.code == .rateLimited {
                    // The budget holds every caller until the pause ends; give up if that is too far away.
                    let until = await rateBudget.earliestStart(priority: kind.priority) ?? clock.now()
                    if until.timeIntervalSince(clock.now()) > configuration.retry.maximumRateLimitWait.timeInterval {
                        throw failure
                    }
                    delay = .milliseconds(Int64(jitter() * 100))
                }
                logger.notice(
                    "retrying DigitalOcean request",
                    metadata: [
                        "do.operation": "\(operation)", "do.attempt": "\(attempt)", "do.error": "\(failure)",
                        "do.backoff": "\(DurationText.format(delay))",
                    ]
                )
                do {
                    try await bounded(atMost: delay) { try await clock.sleep(for: delay) }
                } catch {
                    throw failure
                }
            }
        }
    }

    /// `body`, registered in `waits` as a wait that cannot outlast `limit` (its own timeout or
    /// sleep sees to that).
    func bounded<T, Failure: Error>(
        atMost limit: Duration,
        _ body: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        guard let waits else { return try await body() }
        return try await waits.waiting(atMost: limit, body)
    }

    /// The daemon's one backoff (Timekeeping's): a random wait in [d/2, d), d = initial·2^(attempt-1)
    /// capped at the policy's maximum.
    func backoff(attempt: Int) -> Duration {
        Backoff(initial: configuration.retry.initialBackoff, maximum: configuration.retry.maximumBackoff)
            .delay(failures: attempt, jitter: jitter())
    }

    /// A place in the rate budget for a once-only request, taken before its intent is written and
    /// handed back in a ``SendClearance``. Waiting in line is for pacing; a wait longer than
    /// `maximumRateLimitWait` fails at once with `.rateLimited` instead (the hourly limit can
    /// mean an hour), and the caller tries again later.
    public func permit(priority: RequestPriority = .mutation) async throws(DigitalOceanError) -> RateBudget.Permit {
        try await takePermit(priority: priority, operation: "the rate budget")
    }

    /// Gives back a permit no request will spend (its intent could not be written, or its last
    /// look said no).
    public func giveBack(_ permit: RateBudget.Permit) async {
        await rateBudget.finished(permit)
    }

    private func takePermit(
        priority: RequestPriority,
        operation: String
    ) async throws(DigitalOceanError)
        -> RateBudget.Permit
    {
        if let start = await rateBudget.earliestStart(priority: priority),
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
        do {
            return try await rateBudget.acquire(priority: priority)
        } catch {
            var failure = DigitalOceanError(code: .transport, message: "cancelled while waiting for the rate limit")
            failure.operation = operation
            throw failure
        }
    }

    /// `body`, with a cleared request's permit given back if it fails before anything is sent (a
    /// request that does not validate).
    func beforeSending<T>(
        _ clearance: SendClearance?,
        _ body: () throws(DigitalOceanError) -> T
    ) async throws(DigitalOceanError) -> T {
        do {
            return try body()
        } catch {
            if let clearance { await giveBack(clearance.permit) }
            throw error
        }
    }

    private func performOnce(
        _ method: RequestMethod,
        _ pathAndQuery: String,
        body: Data?,
        kind: RequestKind,
        operation: String,
        clearance: SendClearance?,
        secrets: [String]
    ) async throws(DigitalOceanError) -> Response {
        let permit: RateBudget.Permit
        if let clearance {
            permit = clearance.permit
        } else {
            permit = try await takePermit(priority: kind.priority, operation: operation)
        }
        var requestHeaders: [(name: String, value: String)] = [
            ("Authorization", "Bearer \(token.current.value)"),
            ("User-Agent", configuration.userAgent),
            ("Accept", "application/json"),
        ]
        if body != nil { requestHeaders.append(("Content-Type", "application/json")) }
        let request = TransportRequest(
            method: method.rawValue,
            pathAndQuery: pathAndQuery,
            headers: requestHeaders,
            body: body.map { [UInt8]($0) },
            maximumResponseBytes: configuration.maximumResponseBytes
        )
        // The last check, with nothing between it and the send that could suspend this task.
        if let clearance, !clearance.lastCheck() {
            await rateBudget.finished(permit)
            throw Self.withdrawn(operation)
        }
        let started = ContinuousClock.now
        let answer: TransportResponse
        do {
            // The deadline covers the whole exchange, body included: a slow answer is a bounded
            // wait, which the watchdog counts as life until the deadline (and its grace) has passed.
            let timeout = configuration.requestTimeout
            answer = try await bounded(atMost: timeout) { () async throws(TransportFailure) -> TransportResponse in
                try await transport.send(request, timeout: timeout)
            }
        } catch {
            await rateBudget.finished(permit)
            DigitalOceanMetrics.response(operation: operation, status: nil)
            throw DigitalOceanError.unanswered(
                summary: error.summary,
                underlying: error.underlying,
                sentMaybe: error.mayHaveBeenSent,
                operation: operation,
                kind: kind,
                baseURL: baseURL
            )
        }
        let status = answer.status
        let headers = answer.headers
        let responseBody = answer.body
        DigitalOceanMetrics.response(operation: operation, status: status)
        let rate = RateLimitHeaders(headers: headers)
        let requestID = headers.first { $0.name.lowercased() == "x-request-id" }?.value
        logger.debug(
            "DigitalOcean response",
            metadata: [
                "do.operation": "\(operation)", "do.status": "\(status)",
                "do.request_id": "\(requestID ?? "-")",
                "do.elapsed": "\(DurationText.format(ContinuousClock.now - started))",
                "do.ratelimit_remaining": "\(rate.remaining.map(String.init) ?? "-")",
            ]
        )
        // Every answer feeds the budget once: a 429 pauses it, anything else updates it.
        var pausedUntil: Date?
        if status == 429 {
            DigitalOceanMetrics.rateLimited(perMinute: rate.retryAfter != nil)
            pausedUntil = await rateBudget.rateLimited(rate, for: permit)
        } else {
            await rateBudget.observe(rate, for: permit)
        }
        if (200..<300).contains(status) {
            return Response(status: status, body: responseBody, requestID: requestID)
        }
        throw DigitalOceanError.answered(
            status: status,
            headers: headers,
            body: Data(responseBody),
            operation: operation,
            kind: kind,
            pausedUntil: pausedUntil,
            secrets: [token.current.value, configuration.token.value] + secrets
        )
    }

    static func withdrawn(_ operation: String) -> DigitalOceanError {
        var failure = DigitalOceanError(code: .withdrawn, message: "withdrawn before sending; nothing was sent")
        failure.operation = operation
        return failure
    }

    /// `text` without the token or any of `secrets`: done before anything is cut to length.
    func scrubbed(_ text: String, secrets: [String]) -> String {
        ([token.current.value, configuration.token.value] + secrets).reduce(text) { text, secret in
            ErrorText.redacting(secret, in: text)
        }
    }

    /// A 2xx answer whose body is not what the spec says. On a read: a server fault, retried.
    func undecodable(_ error: any Error, operation: String, response: Response) -> DigitalOceanError {
        var failure = DigitalOceanError(
            code: .server,
            message: "the answer could not be decoded: \(ErrorText.capped("\(error)"))"
        )
        failure.operation = operation
        failure.httpStatus = response.status
        failure.requestID = response.requestID
        return failure
    }

    /// The body of a 2xx answer, decoded; `failure` says what an undecodable one means.
    func decode<Value: Decodable>(
        _ type: Value.Type,
        from response: Response,
        orElse failure: (any Error) -> DigitalOceanError
    ) throws(DigitalOceanError) -> Value {
        do {
            return try DigitalOceanJSON.decoder().decode(type, from: Data(response.body))
        } catch {
            throw failure(error)
        }
    }

    // MARK: - URLs

    static func encodeQuery(_ items: [(String, String)]) -> String {
        items.map { name, value in "\(name)=\(percentEncoded(value))" }.joined(separator: "&")
    }

    /// `value` with every byte but ASCII letters, digits and `-._~:` as `%XX` (UTF-8), as
    /// `addingPercentEncoding(withAllowedCharacters:)` did for ASCII; FoundationEssentials has no
    /// CharacterSet.
    static func percentEncoded(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: ":"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
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
