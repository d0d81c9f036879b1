#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText
import Synchronization
import Timekeeping

/// Who is asking. Creates and deletes change the world and go first; reads can wait.
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
            let trimmed = value.trimmingSpaces()
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
/// Callers ``acquire(priority:)`` a ``Permit`` before each request and hand it back with the answer
/// (``observe(_:for:)``, ``rateLimited(_:for:)``, or ``finished(_:)`` when no answer came). The
/// budget then:
/// - paces this process's own requests with sliding windows (per minute and per hour), because
///   DigitalOcean does not report the per-minute spend;
/// - keeps the hourly `ratelimit-remaining` (everybody's spend) above a ``Configuration/reserve``
///   left for other tools: at or below it, one request goes when the oldest counted request expires
///   (`ratelimit-reset`), and the next waits for that answer;
/// - serves waiting mutations before waiting reads, and keeps some headroom reads may not use;
/// - after a 429 sends nothing until `retry-after` (per-minute limit) or `ratelimit-reset` (hourly
///   limit) has passed, then one probe request; only when the probe is answered do the others
///   follow, evenly spaced for one minute window.
///
/// Requests already in flight when a 429 arrives cannot be recalled; everything sent after it is
/// held as above.
public actor RateBudget {
    public struct Configuration: Sendable {
        /// This process's own requests per minute window (DigitalOcean: 250 per token).
        public var perMinute: Int = 250
        /// This process's own requests per hour window (DigitalOcean: 5,000 per token).
        public var perHour: Int = 5000
        /// The length of the "minute" window; shorter in tests, to match the simulator.
        public var minuteWindow: Duration = .seconds(60)
        /// The length of the "hour" window.
        public var hourWindow: Duration = .seconds(3600)
        /// Hourly requests left for other tools using the token: while `ratelimit-remaining` is at
        /// or below this, requests wait for `ratelimit-reset`.
        public var reserve: Int = 0
        /// Slots of the minute window that reads leave to mutations; nil: a tenth of `perMinute`.
        public var readHeadroomPerMinute: Int?
        /// Hourly requests above the reserve that reads leave to mutations; nil: 2% of the reported
        /// `ratelimit-limit` (else of `perHour`).
        public var readHeadroomPerHour: Int?
        /// Added to waits derived from windows, `retry-after` and `ratelimit-reset` (whole seconds).
        public var safetyMargin: Duration = .milliseconds(500)
        /// The pause after a 429 that gives neither `retry-after` nor a future reset.
        public var fallbackPause: Duration = .seconds(60)
        /// How long a probe's answer is awaited before another request may take its place.
        public var probeTimeout: Duration = .seconds(60)

        public init() {}

        /// DigitalOcean's limits, or smaller ones (with shorter windows) for tests.
        public init(
            perMinute: Int,
            perHour: Int,
            minuteWindow: Duration = .seconds(60),
            hourWindow: Duration = .seconds(3600),
            reserve: Int = 0
        ) {
            self.perMinute = perMinute
            self.perHour = perHour
            self.minuteWindow = minuteWindow
            self.hourWindow = hourWindow
            self.reserve = reserve
        }
    }

    public enum PauseReason: String, Sendable {
        /// 429 with `retry-after`: the per-minute burst limit.
        case perMinuteLimit
        /// 429 without `retry-after`: the sliding hourly limit; wait for `ratelimit-reset`.
        case hourlyLimit
    }

    /// One granted request; hand it back with its answer.
    public struct Permit: Sendable, Hashable {
        public let sequence: UInt64
        public let priority: RequestPriority
    }

    /// For status lines and metrics.
    public struct Snapshot: Sendable, Equatable {
        /// `ratelimit-limit`: the hourly limit.
        public var limit: Int?
        /// The last reported hourly remaining budget, minus requests this process started since.
        public var remaining: Int?
        /// When the oldest counted request expires, as last reported.
        public var resetAt: Date?
        public var pausedUntil: Date?
        public var pauseReason: PauseReason?
        /// A 429 was received and its probe has not been answered yet.
        public var probing: Bool
        /// Requests are evenly spaced until then, after a pause.
        public var recoveringUntil: Date?
        public var lastUpdate: Date?
        /// 429s received, in total and in a row (no other answer between them).
        public var rateLimitedResponses: Int
        public var consecutiveRateLimitedResponses: Int
        /// Requests this process started within the last minute and hour windows.
        public var sentLastMinute: Int
        public var sentLastHour: Int
        public var inFlight: Int
        /// Callers waiting, by priority.
        public var waitingMutations: Int
        public var waitingReads: Int
        public var reserve: Int
    }

    public let configuration: Configuration
    public var reserve: Int { configuration.reserve }
    private var ledger: RateLedger
    private let clock: any DaemonClock
    private let waiters = Mutex(WaiterTable())
    private var nextWaiter: UInt64 = 0

    public init(configuration: Configuration = Configuration(), clock: any DaemonClock = SystemClock()) {
        self.configuration = configuration
        self.ledger = RateLedger(configuration: configuration)
        self.clock = clock
    }

    public var snapshot: Snapshot {
        let now = clock.now()
        let waiting = waiters.withLock { ($0.queues[0].count, $0.queues[1].count) }
        return Snapshot(
            limit: ledger.limit,
            remaining: ledger.estimatedRemaining,
            resetAt: ledger.resetAt,
            pausedUntil: ledger.pausedUntil.flatMap { $0 > now ? $0 : nil },
            pauseReason: ledger.pausedUntil.map { $0 > now } == true ? ledger.pauseReason : nil,
            probing: ledger.probe != .none,
            recoveringUntil: ledger.recoveryUntil.flatMap { $0 > now ? $0 : nil },
            lastUpdate: ledger.lastUpdate,
            rateLimitedResponses: ledger.rateLimitedResponses,
            consecutiveRateLimitedResponses: ledger.consecutiveRateLimited,
            sentLastMinute: ledger.sent(within: configuration.minuteWindow, now: now),
            sentLastHour: ledger.sent(within: configuration.hourWindow, now: now),
            inFlight: ledger.inFlight,
            waitingMutations: waiting.0,
            waitingReads: waiting.1,
            reserve: configuration.reserve
        )
    }

    /// When a request of this priority could start if it were first in line, or nil for "now".
    public func earliestStart(priority: RequestPriority) -> Date? {
        switch ledger.decide(priority: priority, now: clock.now()) {
        case .send: nil
        case .wait(let until): until
        }
    }

    /// Waits until a request may be sent and counts it. Mutations are served before reads; within a
    /// priority, first come first served. Throws `CancellationError` if cancelled while waiting.
    @discardableResult
    public func acquire(priority: RequestPriority) async throws -> Permit {
        let id = nextWaiter
        nextWaiter += 1
        waiters.withLock { $0.enqueue(id, priority: priority) }
        while true {
            if Task.isCancelled {
                waiters.withLock { $0.remove(id) }
                wakeHead()
                throw CancellationError()
            }
            guard waiters.withLock({ $0.head == id }) else {
                await park(id)
                continue
            }
            let now = clock.now()
            switch ledger.decide(priority: priority, now: now) {
            case .send:
                let sequence = ledger.grant(priority: priority, now: now)
                waiters.withLock { $0.remove(id) }
                wakeHead()
                return Permit(sequence: sequence, priority: priority)
            case .wait(let until):
                await wait(id, until: until)
            }
        }
    }

    /// Records an answer other than 429 (any status), with its headers.
    public func observe(_ headers: RateLimitHeaders, for permit: Permit) {
        ledger.observe(headers, sequence: permit.sequence, now: clock.now())
        wakeHead()
    }

    /// Records a 429: every caller waits until `retry-after`, or, without one, until the reset time
    /// (or ``Configuration/fallbackPause``). Returns when the next (probe) request may go.
    @discardableResult
    public func rateLimited(_ headers: RateLimitHeaders, for permit: Permit) -> Date {
        let until = ledger.rateLimited(headers, sequence: permit.sequence, now: clock.now())
        wakeHead()
        return until
    }

    /// Records a request that got no answer (transport error, timeout, cancellation).
    public func finished(_ permit: Permit) {
        ledger.finished(sequence: permit.sequence, now: clock.now())
        wakeHead()
    }

    // MARK: - Waiting

    /// Wakes the first caller in line to look again (it may be asleep until a later time).
    private func wakeHead() {
        waiters.withLock { $0.wakeHead() }?.resume()
    }

    /// Sleeps until `deadline` or until woken, whichever comes first.
    private nonisolated func wait(_ id: UInt64, until deadline: Date) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.clock.sleep(until: deadline) }
            group.addTask { await self.park(id) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Sleeps until woken (by ``wakeHead()``) or cancelled.
    private nonisolated func park(_ id: UInt64) async {
        let token = waiters.withLock { $0.newParkToken() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if !waiters.withLock({ $0.park(id, token: token, continuation) }) { continuation.resume() }
            }
        } onCancel: {
            waiters.withLock { $0.cancelPark(id, token: token) }?.resume()
        }
    }
}

/// The callers waiting on a budget, in order, and how to wake them. Used under a lock so that
/// cancellation (which runs outside the actor) can wake a caller directly.
struct WaiterTable: Sendable {
    struct Entry {
        var priority: RequestPriority
        var parked: (token: UInt64, continuation: CheckedContinuation<Void, Never>)?
        /// Woken while not parked: the next park returns at once.
        var woken = false
        /// A park whose cancellation arrived before it started.
        var cancelledToken: UInt64?
    }

    var entries: [UInt64: Entry] = [:]
    /// FIFO per priority, indexed by `RequestPriority.rawValue`.
    var queues: [[UInt64]] = Array(repeating: [], count: RequestPriority.allCases.count)
    private var tokens: UInt64 = 0

    var head: UInt64? { queues.lazy.compactMap(\.first).first }

    mutating func enqueue(_ id: UInt64, priority: RequestPriority) {
        entries[id] = Entry(priority: priority)
        queues[priority.rawValue].append(id)
    }

    mutating func remove(_ id: UInt64) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        queues[entry.priority.rawValue].removeAll { $0 == id }
    }

    mutating func newParkToken() -> UInt64 {
        tokens += 1
        return tokens
    }

    /// Returns false when the caller should not sleep (already woken or cancelled).
    mutating func park(_ id: UInt64, token: UInt64, _ continuation: CheckedContinuation<Void, Never>) -> Bool {
        guard var entry = entries[id] else { return false }
        if entry.woken || entry.cancelledToken == token {
            entry.woken = false
            entry.cancelledToken = nil
            entries[id] = entry
            return false
        }
        entry.parked = (token, continuation)
        entries[id] = entry
        return true
    }

    mutating func wakeHead() -> CheckedContinuation<Void, Never>? {
        guard let id = head, var entry = entries[id] else { return nil }
        defer { entries[id] = entry }
        if let parked = entry.parked {
            entry.parked = nil
            return parked.continuation
        }
        entry.woken = true
        return nil
    }

    mutating func cancelPark(_ id: UInt64, token: UInt64) -> CheckedContinuation<Void, Never>? {
        guard var entry = entries[id] else { return nil }
        defer { entries[id] = entry }
        if let parked = entry.parked, parked.token == token {
            entry.parked = nil
            return parked.continuation
        }
        entry.cancelledToken = token
        return nil
    }
}
