import CSystemd
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Tells the service manager about the daemon's state through `sd_notify(3)`.
///
/// Every call is a no-op when the process was not started by systemd with a notification socket
/// (`NOTIFY_SOCKET` unset), so the daemon behaves the same in a terminal and in tests. The
/// environment is never modified: `NOTIFY_SOCKET` and `WATCHDOG_USEC` stay set, so that every
/// call (and any child that checks them) sees the same thing.
public struct SystemdNotifier: Sendable {
    /// Whether the service manager is listening (`NOTIFY_SOCKET` was set when this was created).
    public let isEnabled: Bool

    /// The watchdog interval the unit asked for (`WatchdogSec=`), or `nil` when the watchdog is off
    /// or meant for another process (`WATCHDOG_PID` names a different PID).
    public let watchdogInterval: Duration?

    /// Where messages go instead of `sd_notify` (a test's recorder); nil for the service manager.
    private let deliver: (@Sendable (String) -> Void)?

    public init() {
        self.deliver = nil
        self.isEnabled = getenv("NOTIFY_SOCKET") != nil
        var usec: UInt64 = 0
        // 0: keep WATCHDOG_USEC/WATCHDOG_PID in the environment.
        if sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            self.watchdogInterval = .microseconds(Int64(clamping: usec))
        } else {
            self.watchdogInterval = nil
        }
    }

    /// A notifier that hands every message (`KEY=value` lines, as `sd_notify` would get them) to
    /// `deliver` instead of the service manager: tests see exactly what systemd would.
    public init(watchdogInterval: Duration? = nil, delivering deliver: @escaping @Sendable (String) -> Void) {
        self.isEnabled = true
        self.watchdogInterval = watchdogInterval
        self.deliver = deliver
    }

    /// `READY=1`: start-up is finished; systemd moves the unit from activating to active.
    public func ready() { send("READY=1") }

    /// `STATUS=`: a one-line summary shown by `systemctl status`. Line breaks become spaces,
    /// because the notification protocol is line-based.
    public func status(_ text: String) {
        send("STATUS=" + Self.oneLine(text))
    }

    /// `READY=1` and `STATUS=` in one message, so the two never disagree.
    public func ready(status text: String) {
        send("READY=1\nSTATUS=" + Self.oneLine(text))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (the time of the reload on `CLOCK_MONOTONIC`, as
    /// sd_notify(3) asks): the daemon is reloading its configuration. Send ``ready(status:)`` when
    /// done; systemd keeps the unit `reloading` until then.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    /// `STOPPING=1`: the daemon is shutting down on request.
    public func stopping() { send("STOPPING=1") }

    /// `EXTEND_TIMEOUT_USEC=`: asks for `duration` more before the current start (or stop) timeout
    /// fires, e.g. while waiting for the database during start-up. Must be repeated before each
    /// extension runs out.
    public func extendTimeout(_ duration: Duration) {
        send("EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration))")
    }

    /// `WATCHDOG=1`: the daemon is alive. Prefer ``SystemdWatchdog``, which only pings while the
    /// reconcile loop reports progress.
    public func watchdog() { send("WATCHDOG=1") }

    /// Sends raw notification assignments (`KEY=value` lines). No-op when not under systemd.
    public func send(_ state: String) {
        guard isEnabled else { return }
        if let deliver { return deliver(state) }
        _ = state.withCString { sd_notify(0, $0) }
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000)
        if overflow { return UInt64.max }
        return whole &+ UInt64(attoseconds / 1_000_000_000_000)
    }
}
