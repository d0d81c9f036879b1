import ReconcileCore

public struct ReconcilerConfiguration: Sendable {
    public var decision = DecisionConfiguration()
    /// Agent bootstrap; nil: off (rows go from `provisioning` straight to `active`). Setting it
    /// sets the decision's policy too, so the two never disagree.
    public var enrollment: AgentEnrollment? {
        didSet { decision.agentBootstrap = enrollment?.policy }
    }
    /// A full pass at least this often, even with nothing to do (NOTIFY is not stored by Postgres).
    public var resyncInterval: Duration = .seconds(60)
    /// A full pass this often while some row waits on DigitalOcean.
    public var fastInterval: Duration = .seconds(5)
    /// What full lists of the fleet may spend an hour, in requests (pages): a fleet of P pages is
    /// listed every P × 3600 / this seconds, or every `resyncInterval` if that is longer. Between
    /// full lists, passes read only what waits on DigitalOcean.
    public var listBudgetPerHour = 750
    /// Pages of a full list read in one pass, and how soon the next slice may follow: a list of
    /// many pages takes at most 25 pages every 10 s (150 a minute, of the 250 DigitalOcean allows),
    /// so new rows, and the watchdog, never wait for a whole list. While rows wait on the list, a
    /// fifth of this every fifth of the interval (`FleetReconciler.slicing`).
    public var listPagesPerSlice = 25
    public var listSliceInterval: Duration = .seconds(10)
    /// Mutating DigitalOcean calls in flight at once.
    public var maxConcurrentCalls = 4
    /// Reads of single rows in one pass (lookups of identities, follow-ups of droplets, droplets a
    /// row records that the list did not show), all together: see ReadSchedule.
    public var maxLookupsPerPass = 50
    /// The requests a minute the token allows (DigitalOcean's 250), for the backlog's estimates.
    public var requestsPerMinute = 250
    /// A destroy already accepted is not re-sent for this long while the droplet still lists.
    public var destroyRepeatInterval: Duration = .seconds(30)
    /// The brake on destroys: how many may be sent in any hour (DestroyBudget).
    public var destroyBudget = DestroyBudget()
    /// How often a standby replica tries to take leadership.
    public var standbyPollInterval: Duration = .milliseconds(500)

    public init() {}
}
