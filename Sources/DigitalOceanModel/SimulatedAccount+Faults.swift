import Foundation

/// Injected faults that strike before a request does anything, or after it did (see
/// ``SimulatorFaults``; a create's own are in `+Create`).
extension SimulatedAccount {
    /// A 500 with no side effect, when `fail_next_requests` or `server_error_probability` (or, for
    /// a create, `create_server_error_before_effect_probability`) says so.
    mutating func requestFault(_ context: ResponseContext, create: Bool) -> SimulatedDigitalOcean.Response? {
        if faults.failNextRequests > 0 {
            faults.failNextRequests -= 1
            return serverError(context)
        }
        if rng.chance(faults.serverErrorProbability) { return serverError(context) }
        if create, rng.chance(faults.createServerErrorBeforeEffectProbability) { return serverError(context) }
        return nil
    }

    /// Any request but a create, once carried out: answered 500, or not at all, when
    /// `server_error_after_effect_probability` or `response_lost_probability` says so.
    mutating func faultAfterEffect(_ result: APIResult, _ context: ResponseContext) -> APIResult {
        guard case .respond(let response) = result, response.status < 500 else { return result }
        if rng.chance(faults.serverErrorAfterEffectProbability) { return .respond(serverError(context)) }
        if rng.chance(faults.responseLostProbability) { return .drop }
        return result
    }
}
