#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// The rate budget's bookkeeping and decisions, without waiting or concurrency: given the requests
/// this process has sent, the last `ratelimit-*` report and any 429 pause, may a request of some
/// priority start now, and if not, when should the question be asked again?
///
/// Every rule only ever allows more as time passes (until a new response arrives), so "wait until
/// the latest of the constraints, then ask again" is correct.
struct RateLedger: Sendable {
    enum Decision: Equatable, Sendable {
        case send
        case wait(until: Date)
    }

    struct Send: Sendable {
        var sequence: UInt64
        /// When it was started; moved to when its answer came, which is never earlier than the
        /// moment DigitalOcean counted it.
        var time: Date
        var completed = false
    }

    enum Probe: Sendable, Equatable {
        case none
        /// A 429 was received: after the pause, exactly one request goes first.
        case required
        /// That request is out; nothing else goes until it is answered (or the deadline passes).
        case inFlight(sequence: UInt64, deadline: Date)
    }

    let configuration: RateBudget.Configuration
    private(set) var sends: [Send] = []
    private(set) var nextSequence: UInt64 = 1

    // The last accepted `ratelimit-*` report (everybody's hourly spend).
    private(set) var limit: Int?
    private(set) var reportedRemaining: Int?
    /// Sends with a higher sequence were not counted in `reportedRemaining`.
    private(set) var reportedSequence: UInt64 = 0
    private(set) var resetAt: Date?
    private(set) var lastUpdate: Date?
    /// A reset instant already used to send one request beyond the floor.
    private var consumedReset: Date?
    /// The request sent on the strength of a reset, while it is unanswered.
    private var resetProbe: (sequence: UInt64, deadline: Date)?

    // 429 handling.
    private(set) var pausedUntil: Date?
    private(set) var pauseReason: RateBudget.PauseReason?
    /// Requests with a lower sequence were already sent when the last 429 arrived.
    private var pauseBoundary: UInt64 = 0
    private(set) var probe: Probe = .none
    /// After a successful probe, requests are spaced evenly until then.
    private(set) var recoveryUntil: Date?
    private var lastGrant: Date?
    private(set) var rateLimitedResponses = 0
    /// 429s answered in a row, with no other answer between them.
    private(set) var consecutiveRateLimited = 0

    init(configuration: RateBudget.Configuration) {
        self.configuration = configuration
    }

    // MARK: - Decisions

    /// The hourly remaining budget as this process knows it: the last report minus what was sent
    /// since (counted as unreported, even if in flight when the report was made).
    var estimatedRemaining: Int? {
        guard let reportedRemaining else { return nil }
        let unreported = sends.reduce(0) { $0 + ($1.sequence > reportedSequence ? 1 : 0) }
        return reportedRemaining - unreported
    }

    func decide(priority: RequestPriority, now: Date) -> Decision {
        var earliest = now
        func notBefore(_ date: Date) { if date > earliest { earliest = date } }
        let margin = configuration.safetyMargin.timeInterval

        if let pausedUntil { notBefore(pausedUntil) }
        if case .inFlight(_, let deadline) = probe { notBefore(deadline) }

        // This process's own sliding windows.
        notBefore(
            windowOpening(
                limit: configuration.minuteLimit(for: priority),
                window: configuration.minuteWindow.timeInterval + margin,
                now: now
            )
        )
        notBefore(
            windowOpening(
                limit: configuration.perHour,
                window: configuration.hourWindow.timeInterval + margin,
                now: now
            )
        )

        // Everybody's hourly spend, as reported, above the reserve.
        if let estimate = estimatedRemaining, estimate <= configuration.hourlyFloor(for: priority, reportedLimit: limit)
        {
            notBefore(resetOpening(now: now))
        }

        if let recoveryUntil, now < recoveryUntil, let lastGrant {
            notBefore(lastGrant.addingTimeInterval(configuration.evenSpacing))
        }
        return earliest > now ? .wait(until: earliest) : .send
    }

    /// When the count of sends within `window` falls below `limit`.
    private func windowOpening(limit: Int, window: TimeInterval, now: Date) -> Date {
        let start = now.addingTimeInterval(-window)
        guard sends.reduce(0, { $0 + ($1.time > start ? 1 : 0) }) >= limit else { return now }
        let inWindow = sends.lazy.map(\.time).filter { $0 > start }.sorted()
        // Once the oldest (count - limit + 1) have left the window, one more may go.
        return inWindow[inWindow.count - limit].addingTimeInterval(window)
    }

    /// At or below the floor: one request when the oldest counted request expires, then wait for
    /// its answer to say how much more room there is.
    private func resetOpening(now: Date) -> Date {
        let margin = configuration.safetyMargin.timeInterval
        if let resetProbe { return resetProbe.deadline }
        guard let resetAt else {
            return (lastUpdate ?? now).addingTimeInterval(configuration.fallbackPause.timeInterval)
        }
        if let consumedReset, consumedReset >= resetAt {
            // Nothing newer was reported since that reset was used (clock skew?): be conservative.
            return consumedReset.addingTimeInterval(configuration.fallbackPause.timeInterval)
        }
        return resetAt.addingTimeInterval(margin)
    }

    // MARK: - Events

    /// Records a request that `decide` allowed. Returns its sequence number.
    mutating func grant(priority: RequestPriority, now: Date) -> UInt64 {
        let sequence = nextSequence
        nextSequence += 1
        if let estimate = estimatedRemaining, estimate <= configuration.hourlyFloor(for: priority, reportedLimit: limit)
        {
            resetProbe = (sequence, now.addingTimeInterval(configuration.probeTimeout.timeInterval))
            consumedReset = resetAt
        }
        var probeDue = probe == .required
        if case .inFlight(_, let deadline) = probe, deadline <= now { probeDue = true }
        if probeDue {
            probe = .inFlight(
                sequence: sequence,
                deadline: now.addingTimeInterval(configuration.probeTimeout.timeInterval)
            )
        }
        if let pausedUntil, pausedUntil <= now {
            self.pausedUntil = nil
            pauseReason = nil
        }
        sends.append(Send(sequence: sequence, time: now))
        lastGrant = now
        prune(now: now)
        return sequence
    }

    /// An answer other than 429 (success or any other error), with its headers.
    mutating func observe(_ headers: RateLimitHeaders, sequence: UInt64, now: Date) {
        complete(sequence, now: now)
        consecutiveRateLimited = 0
        if case .inFlight(let probeSequence, _) = probe, probeSequence == sequence {
            probe = .none
            recoveryUntil = now.addingTimeInterval(configuration.minuteWindow.timeInterval)
        }
        accept(headers, sequence: sequence, now: now)
    }

    /// A 429. Returns when requests may be sent again.
    @discardableResult
    mutating func rateLimited(_ headers: RateLimitHeaders, sequence: UInt64, now: Date) -> Date {
        complete(sequence, now: now)
        rateLimitedResponses += 1
        consecutiveRateLimited += 1
        var reported = headers
        // `ratelimit-remaining: 0` on a per-minute 429 speaks of the burst limit, not the hour.
        if headers.retryAfter != nil { reported.remaining = nil }
        accept(reported, sequence: sequence, now: now)
        let margin = configuration.safetyMargin.timeInterval
        let until: Date
        let reason: RateBudget.PauseReason
        if let retryAfter = headers.retryAfter {
            until = now.addingTimeInterval(retryAfter.timeInterval + margin)
            reason = .perMinuteLimit
        } else if let reset = headers.reset, reset > now {
            until = reset.addingTimeInterval(margin)
            reason = .hourlyLimit
        } else {
            until = now.addingTimeInterval(configuration.fallbackPause.timeInterval)
            reason = .hourlyLimit
        }
        if pausedUntil.map({ until > $0 }) ?? true {
            pausedUntil = until
            pauseReason = reason
        }
        // A 429 for a request sent before the last pause was known changes nothing else: the pause
        // and its probe already cover it.
        let fresh = sequence >= pauseBoundary
        let probeRefused: Bool
        if case .inFlight(let probeSequence, _) = probe {
            probeRefused = probeSequence == sequence
        } else {
            probeRefused = false
        }
        if fresh || probeRefused {
            pauseBoundary = nextSequence
            probe = .required
            recoveryUntil = nil
        }
        return pausedUntil ?? until
    }

    /// A request that got no answer (transport error, timeout, cancellation).
    mutating func finished(sequence: UInt64, now: Date) {
        complete(sequence, now: now)
        if case .inFlight(let probeSequence, _) = probe, probeSequence == sequence {
            probe = .required
        }
    }

    private mutating func complete(_ sequence: UInt64, now: Date) {
        if let index = sends.lastIndex(where: { $0.sequence == sequence }) {
            if sends[index].time < now { sends[index].time = now }
            sends[index].completed = true
        }
        if let resetProbe, resetProbe.sequence == sequence { self.resetProbe = nil }
        // An expired probe deadline lets the next request become the probe.
        if case .inFlight(_, let deadline) = probe, deadline <= now { probe = .required }
    }

    private mutating func accept(_ headers: RateLimitHeaders, sequence: UInt64, now: Date) {
        guard headers.limit != nil || headers.remaining != nil || headers.reset != nil else { return }
        // An answer to an older request than the last report's is stale.
        guard sequence >= reportedSequence else { return }
        reportedSequence = sequence
        if let value = headers.limit { limit = value }
        if let value = headers.remaining { reportedRemaining = value }
        if let value = headers.reset { resetAt = value }
        lastUpdate = now
    }

    private mutating func prune(now: Date) {
        let horizon = now.addingTimeInterval(
            -(configuration.hourWindow.timeInterval + configuration.safetyMargin.timeInterval)
        )
        // Only the oldest few can have expired; sends are appended in sequence order.
        if let first = sends.first, first.time <= horizon {
            sends.removeAll { $0.time <= horizon && $0.sequence <= reportedSequence }
        }
    }

    // MARK: - Reporting

    func sent(within window: Duration, now: Date) -> Int {
        let start = now.addingTimeInterval(-window.timeInterval)
        return sends.reduce(0) { $0 + ($1.time > start ? 1 : 0) }
    }

    var inFlight: Int { sends.reduce(0) { $0 + ($1.completed ? 0 : 1) } }
}

extension RateBudget.Configuration {
    /// Own sends allowed in the minute window for this priority.
    func minuteLimit(for priority: RequestPriority) -> Int {
        switch priority {
        case .mutation: max(1, perMinute)
        case .read: max(1, perMinute - effectiveReadHeadroomPerMinute)
        }
    }

    /// At or below this reported remaining budget, requests of this priority wait for the reset.
    /// `reportedLimit` (`ratelimit-limit`) scales the default read headroom to the token's real limit.
    func hourlyFloor(for priority: RequestPriority, reportedLimit: Int? = nil) -> Int {
        switch priority {
        case .mutation: max(0, reserve)
        case .read: max(0, reserve) + max(0, readHeadroomPerHour ?? (reportedLimit ?? perHour) / 50)
        }
    }

    var effectiveReadHeadroomPerMinute: Int { max(0, readHeadroomPerMinute ?? perMinute / 10) }

    /// The gap between requests sent at exactly the per-minute rate.
    var evenSpacing: TimeInterval { minuteWindow.timeInterval / Double(max(1, perMinute)) }
}
