/// What the caller of a once-only request (a create, a droplet action, a destroy after its last
/// look) hands the client: the place in the rate budget it took before writing its intent
/// (``DigitalOceanClient/permit(priority:)``), and its last word, asked synchronously right
/// before the request is handed to the transport, with nothing in between that could suspend the
/// task: a process frozen after writing its intent (SIGSTOP, a paused VM) finds on resuming that
/// the intent is stale, and sends nothing.
///
/// The client spends the permit on one attempt and never resends such a request (the caller's
/// last look must come before every send); whatever happens, the permit goes back to the budget.
/// When `lastCheck` says no, nothing is sent and the call throws `.withdrawn`.
public struct SendClearance: Sendable {
    public var permit: RateBudget.Permit
    public var lastCheck: @Sendable () -> Bool

    public init(permit: RateBudget.Permit, lastCheck: @escaping @Sendable () -> Bool) {
        self.permit = permit
        self.lastCheck = lastCheck
    }
}
