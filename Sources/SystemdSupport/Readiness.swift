import Synchronization

/// The daemon's readiness as systemd sees it: `READY=1` once, the first time the replica is
/// settled (leader after its first full pass, or standby), `STATUS=` every time; and a reload
/// bracketed by `RELOADING=1` and `READY=1` only once ready (before that, `READY=1` would claim a
/// readiness the daemon does not have yet).
public final class Readiness: Sendable {
    private let notifier: SystemdNotifier
    private let sent = Mutex(false)

    public init(notifier: SystemdNotifier) {
        self.notifier = notifier
    }

    /// Whether `READY=1` has been sent.
    public var isReady: Bool { sent.withLock { $0 } }

    /// The replica is settled, as `status` says: `READY=1` with it the first time, else `STATUS=`.
    public func settled(status: String) {
        let first = sent.withLock { sent in
            defer { sent = true }
            return !sent
        }
        if first { notifier.ready(status: status) } else { notifier.status(status) }
    }

    /// Runs `reload`, between `RELOADING=1` and `READY=1` once the daemon is ready (so that
    /// `systemctl reload` returns when it is done), by itself before.
    public func reloading(_ reload: () -> Void) {
        let ready = isReady
        if ready { notifier.reloading() }
        reload()
        if ready { notifier.ready() }
    }
}
