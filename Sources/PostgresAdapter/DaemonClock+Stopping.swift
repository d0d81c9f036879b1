import ServiceLifecycle
import Timekeeping

extension DaemonClock {
    /// Sleeps for `duration` unless the service stops first: false when graceful shutdown or
    /// cancellation ended the wait, and the caller should stop rather than try again.
    func sleepUnlessStopping(for duration: Duration) async -> Bool {
        do {
            try await cancelWhenGracefulShutdown { try await self.sleep(for: duration) }
            return true
        } catch {
            return false
        }
    }
}
