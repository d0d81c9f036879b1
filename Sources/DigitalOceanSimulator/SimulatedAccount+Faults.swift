import Foundation

/// Injected faults that strike before a request does anything (see ``SimulatorFaults``).
extension SimulatedAccount {
    /// A 500 with no side effect, when `fail_next_requests` or `server_error_probability` says so.
    mutating func requestFault(_ context: ResponseContext) -> SimulatedDigitalOcean.Response? {
        if faults.failNextRequests > 0 {
            faults.failNextRequests -= 1
            return serverError(context)
        }
        if rng.chance(faults.serverErrorProbability) { return serverError(context) }
        return nil
    }
}
