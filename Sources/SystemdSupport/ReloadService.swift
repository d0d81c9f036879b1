#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import ServiceLifecycle

/// Runs `reload` on every hangup (SIGHUP: `systemctl reload`) until graceful shutdown or
/// cancellation, through ``Readiness/reloading(_:)`` so systemd hears when it is done.
///
/// SIGHUP's default action ends the process: the daemon ignores it from its first line
/// (``HangupSignal/ignore()``) and hands this service the trapped signals.
public struct ReloadService<Hangups: AsyncSequence & Sendable>: Service where Hangups.Element: Sendable {
    let hangups: Hangups
    let readiness: Readiness
    let reload: @Sendable () -> Void

    /// - Parameter hangups: one element per SIGHUP (`UnixSignalsSequence(trapping: .sighup)`).
    public init(hangups: Hangups, readiness: Readiness, reload: @escaping @Sendable () -> Void) {
        self.hangups = hangups
        self.readiness = readiness
        self.reload = reload
    }

    public func run() async throws {
        for try await _ in hangups.cancelOnGracefulShutdown() {
            if Task.isCancelled { return }
            readiness.reloading(reload)
        }
    }
}

public enum HangupSignal {
    /// Ignores SIGHUP, whose default action ends the process: call it first thing, so that a
    /// SIGHUP that comes before ``ReloadService`` listens is not fatal either.
    public static func ignore() {
        signal(SIGHUP, SIG_IGN)
    }
}
