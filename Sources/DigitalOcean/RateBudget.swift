import Foundation

/// Who is asking. Creates and deletes change the world and go first; reads can wait.
/// Not acted on yet: the parameter exists so that priorities can be added without touching callers.
public enum RequestPriority: Int, Sendable, Comparable, CaseIterable {
    case mutation = 0
    case read = 1

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The `ratelimit-*` headers of one response, looked up case-insensitively.
public struct RateLimitHeaders: Sendable, Equatable {
    /// `ratelimit-limit`: the hourly limit.
    public var limit: Int?
    /// `ratelimit-remaining`: requests left in the sliding hour.
    public var remaining: Int?
    /// `ratelimit-reset`: when the oldest counted request expires.
    public var reset: Date?
    /// `retry-after` in seconds; only on per-minute 429s.
    public var retryAfter: Duration?

    public init(limit: Int? = nil, remaining: Int? = nil, reset: Date? = nil, retryAfter: Duration? = nil) {
        self.limit = limit
        self.remaining = remaining
        self.reset = reset
        self.retryAfter = retryAfter
    }

    /// Parses from header name/value pairs; names compare case-insensitively.
    public init<S: Sequence>(headers: S) where S.Element == (name: String, value: String) {
        for (name, value) in headers {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            switch name.lowercased() {
            case "ratelimit-limit": limit = Int(trimmed)
            case "ratelimit-remaining": remaining = Int(trimmed)
            case "ratelimit-reset": reset = Int64(trimmed).map { Date(timeIntervalSince1970: TimeInterval($0)) }
            case "retry-after":
                // DigitalOcean sends whole seconds (the HTTP-date form is not used).
                if let seconds = Double(trimmed), seconds.isFinite {
                    retryAfter = .milliseconds(Int64(max(0, seconds) * 1000))
                }
            default: break
            }
        }
    }
}

/// The token's request budget, shared by every caller using the token in this process.
///
/// Fed by the `ratelimit-*` headers of every response. Callers `acquire` before each request: it
/// returns at once while budget remains, waits while a 429 pause is in force (until `retry-after`
/// for the per-minute limit, until `ratelimit-reset` for the hourly one), and waits for the reset
/// when the hourly budget is exhausted.
///
/// Extension points for later issues: `reserve` (requests left for other users of the token) and
/// `priority` (mutations ahead of reads) are already in the signatures.
public actor RateBudget {
    public enum PauseReason: String, Sendable {
        /// 429 with `retry-after`: the per-minute burst limit.
        case perMinuteLimit
        /// 429 without `retry-after`: the sliding hourly limit; wait for `ratelimit-reset`.
        case hourlyLimit
    }

    public struct Snapshot: Sendable, Equatable {
        public var limit: Int?
        /// The last reported remaining budget, minus requests started since.
        public var remaining: Int?
        public var resetAt: Date?
        public var pausedUntil: Date?
        public var pauseReason: PauseReason?
        public var lastUpdate: Date?
        /// How many 429s this budget has seen.
        public var rateLimitedResponses: Int
    }

    /// Requests to leave for other users of the token. 0 today.
    public let reserve: Int
    private let now: @Sendable () -> Date
    private var limit: Int?
    private var remaining: Int?
    private var resetAt: Date?
    private var pausedUntil: Date?
    private var pauseReason: PauseReason?
    private var lastUpdate: Date?
    private var rateLimitedResponses = 0

    public init(reserve: Int = 0, now: @escaping @Sendable () -> Date = { Date() }) {
        self.reserve = max(0, reserve)
        self.now = now
    }

    public var snapshot: Snapshot {
        Snapshot(
            limit: limit, remaining: remaining, resetAt: resetAt, pausedUntil: pausedUntil,
            pauseReason: pauseReason, lastUpdate: lastUpdate, rateLimitedResponses: rateLimitedResponses
        )
    }

    /// When a request of this priority could start, or nil for "now".
    public func earliestStart(priority: RequestPriority) -> Date? {
        let current = now()
        if let pausedUntil, pausedUntil > current { return pausedUntil }
        if let remaining, remaining <= reserve, let resetAt, resetAt > current { return resetAt }
        return nil
    }

    /// Waits until a request may be sent, then counts it against the local estimate.
    /// Throws `CancellationError` if the task is cancelled while waiting.
    public func acquire(priority: RequestPriority) async throws {
        // Bounded: each turn sleeps until a future instant that only moves forward on new 429s.
        while let start = earliestStart(priority: priority) {
            let wait = start.timeIntervalSince(now())
            if wait > 0 {
                try await Task.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up))))
            }
            let current = now()
            if let pausedUntil, pausedUntil <= current {
                self.pausedUntil = nil
                self.pauseReason = nil
            }
            if let resetAt, resetAt <= current, let remaining, remaining <= reserve {
                // The oldest request has expired: one more is allowed until the next response says more.
                self.remaining = reserve + 1
            }
        }
        if let remaining { self.remaining = remaining - 1 }
    }

    /// Records the headers of a response (any status).
    public func observe(_ headers: RateLimitHeaders) {
        guard headers.limit != nil || headers.remaining != nil || headers.reset != nil else { return }
        if let value = headers.limit { limit = value }
        if let value = headers.remaining { remaining = value }
        if let value = headers.reset { resetAt = value }
        lastUpdate = now()
    }

    /// Records a 429: pauses every caller until `retry-after`, or, without one, until the reset time.
    /// Returns when callers may try again.
    @discardableResult
    public func rateLimited(_ headers: RateLimitHeaders, fallback: Duration = .seconds(60)) -> Date {
        observe(headers)
        rateLimitedResponses += 1
        let current = now()
        let until: Date
        let reason: PauseReason
        if let retryAfter = headers.retryAfter {
            until = current.addingTimeInterval(retryAfter.timeInterval)
            reason = .perMinuteLimit
        } else if let reset = headers.reset, reset > current {
            until = reset
            reason = .hourlyLimit
        } else {
            until = current.addingTimeInterval(fallback.timeInterval)
            reason = .hourlyLimit
        }
        if pausedUntil.map({ until > $0 }) ?? true {
            pausedUntil = until
            pauseReason = reason
        }
        return pausedUntil ?? until
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let c = components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }
}
