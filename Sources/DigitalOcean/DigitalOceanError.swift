#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// Everything the DigitalOcean client throws. `description` is meant for operators and never
/// contains the token; `debugDescription` adds the underlying error.
public struct DigitalOceanError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case validation, unauthorized, notFound, rateLimited, busy, capacity, server, outcomeUnknown, transport,
                withdrawn
        }

        let base: Base

        /// The request is invalid: rejected locally before sending, or by a 400/422. Permanent.
        public static let validation = Code(base: .validation)
        /// 401 (bad or revoked token) or 403 (token lacks a scope). Permanent until an operator acts.
        public static let unauthorized = Code(base: .unauthorized)
        /// 404 on a read. Permanent for that id.
        public static let notFound = Code(base: .notFound)
        /// 429. Transient: wait for `retryAfter` / `rateLimitResetAt`.
        public static let rateLimited = Code(base: .rateLimited)
        /// A 422 saying the droplet already has a pending event: another action holds it (it is
        /// `locked`). Transient: send again once that action is done. Inferred from DigitalOcean's
        /// message, since it gives this the same `unprocessable_entity` id as a bad request.
        public static let busy = Code(base: .busy)
        /// A 422 saying the account or the region cannot take the droplet now: the account's
        /// droplet limit, a region or size out of capacity. Transient: nothing was made, and the
        /// same request succeeds once the limit is raised or capacity returns. Inferred from
        /// DigitalOcean's message, like `busy`.
        public static let capacity = Code(base: .capacity)
        /// A 5xx (or an undecodable answer) on a read or delete. Transient.
        public static let server = Code(base: .server)
        /// A create or droplet action whose answer never came (timeout, reset) or was a 5xx: it may or
        /// may not have been done. Transient, but never resend blindly: look first (a create's
        /// identity tag, the droplet and its actions).
        public static let outcomeUnknown = Code(base: .outcomeUnknown)
        /// The request could not be carried out (DNS, connect, TLS, reset on a read). Transient.
        public static let transport = Code(base: .transport)
        /// Not sent: the caller's last check before sending (`beforeSend`) said no. Nothing was done.
        public static let withdrawn = Code(base: .withdrawn)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// What went wrong, in words an operator can act on.
    public var message: String
    /// The operation, e.g. `POST /v2/droplets`. Never includes headers.
    public var operation: String?
    public var httpStatus: Int?
    /// DigitalOcean's error `id`, e.g. `unprocessable_entity`.
    public var apiErrorID: String?
    /// DigitalOcean's `request_id` (body) or `x-request-id` (header).
    public var requestID: String?
    /// 429 from the per-minute limit: how long DigitalOcean asked us to wait.
    public var retryAfter: Duration?
    /// 429: when the oldest counted request expires (`ratelimit-reset`).
    public var rateLimitResetAt: Date?
    /// How many attempts were made before giving up.
    public var attempts: Int = 1
    /// The underlying error, rendered; only in `debugDescription`.
    public var underlying: String?

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Transient errors are retried later and never fail a row; permanent ones need a changed
    /// request or an operator.
    public var isTransient: Bool {
        switch code.base {
        case .rateLimited, .busy, .capacity, .server, .outcomeUnknown, .transport, .withdrawn: true
        case .validation, .unauthorized, .notFound: false
        }
    }

    public var isPermanent: Bool { !isTransient }

    public var description: String {
        var text = "DigitalOcean \(code)"
        if let operation { text += " (\(operation))" }
        if let httpStatus { text += " HTTP \(httpStatus)" }
        if let apiErrorID { text += " \(apiErrorID)" }
        text += ": \(message)"
        if let retryAfter { text += "; retry after \(DurationText.format(retryAfter))" }
        if let requestID { text += " [request \(requestID)]" }
        if attempts > 1 { text += " after \(attempts) attempts" }
        return text
    }

    public var debugDescription: String {
        description + (underlying.map { " underlying: \($0)" } ?? "")
    }

    static func localValidation(_ message: String) -> DigitalOceanError {
        DigitalOceanError(code: .validation, message: message)
    }
}
