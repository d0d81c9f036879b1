#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore

/// How a failed call to DigitalOcean should be treated.
public enum CloudFailureKind: Sendable, Hashable {
    /// The request was refused as given (invalid input, 4xx): retrying will not help.
    case permanent
    /// Refused without effect (429, 401, 5xx on a read, a transport error on a read): retry later.
    case transient
    /// A create whose response never came: it may or may not have been performed.
    case outcomeUnknown
    /// A request that was not sent: its last check said no. Nothing was performed.
    case withdrawn
}

public struct CloudFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var kind: CloudFailureKind
    /// Operator-facing words, without secrets.
    public var message: String
    /// DigitalOcean's request id, where the response carried one.
    public var requestID: String?
    /// When the API said to come back (a 429's retry-after or reset), if it did.
    public var retryAfter: Duration?

    public init(kind: CloudFailureKind, message: String, requestID: String? = nil, retryAfter: Duration? = nil) {
        self.kind = kind
        self.message = message
        self.requestID = requestID
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}

public struct AcceptedCreate: Sendable, Hashable {
    public var droplet: ObservedDroplet
    public var requestID: String?

    public init(droplet: ObservedDroplet, requestID: String?) {
        self.droplet = droplet
        self.requestID = requestID
    }
}

public enum DestroyOutcome: Sendable, Hashable {
    case destroyed(requestID: String?)
    /// 404: the droplet was already gone.
    case alreadyGone
}

/// Where a list of the fleet goes on: the page after the last one read.
public struct FleetListCursor: Sendable, Hashable {
    /// The page's number, from 1.
    public var page: Int
    /// The page's address as the page before linked it (DigitalOcean's `links.pages.next`); nil
    /// for the first page.
    public var link: String?

    public init(page: Int, link: String?) {
        self.page = page
        self.link = link
    }

    public static let first = FleetListCursor(page: 1, link: nil)
}

/// One page of the fleet list, already reduced to what the decision needs.
public struct FleetPage: Sendable {
    public var droplets: [ObservedDroplet]
    /// The page after this one; nil on the last page.
    public var next: FleetListCursor?
    /// How many droplets the whole list holds, as DigitalOcean counted them for this page.
    public var total: Int?

    public init(droplets: [ObservedDroplet], next: FleetListCursor?, total: Int? = nil) {
        self.droplets = droplets
        self.next = next
        self.total = total
    }
}

/// The fleet as one list showed it.
public struct FleetListing: Sendable, Hashable {
    public var droplets: [ObservedDroplet]
    /// How many pages the list took; one page is one consistent answer.
    public var pages: Int

    public init(droplets: [ObservedDroplet], pages: Int) {
        self.droplets = droplets
        self.pages = pages
    }
}

/// DigitalOcean as the loop needs it. Every method throws `CloudFailure`.
/// A once-only request's place in a provider's rate budget (`DropletCloud.permit()`): opaque to
/// the loop, which only hands it back to the cloud that issued it.
public protocol SendPermit: Sendable {}

public protocol DropletCloud: Sendable {
    /// One page of the droplets tagged `citrus-host`. A list of many pages is read a page at a
    /// time, so that it can be paced and can go on where it was after a failure.
    func listFleetPage(_ cursor: FleetListCursor) async throws -> FleetPage
    /// The droplets carrying one row's identity tag (`tag_name=citrus-server:<uuid>`): one page,
    /// so an empty answer confirms that none existed when it was taken.
    func droplets(identity row: UUID) async throws -> [ObservedDroplet]
    /// One droplet by id; nil when DigitalOcean answers 404.
    func droplet(id: Int64) async throws -> ObservedDroplet?
    /// Local validation only: the reason the order can never succeed, or nil. Sends nothing.
    func problem(with order: CreateOrder) -> String?
    /// A place in the provider's rate budget for one once-only request (a create, a droplet
    /// action, a destroy), taken before its intent is written: a long wait in the budget then
    /// never shortens a settle period. Throws a `.transient` failure when the budget would hold it
    /// too long. The request that spends it gives it back whatever happens; one that is never
    /// sent gives it back through `giveBack`.
    func permit() async throws -> any SendPermit
    /// Returns a permit no request will spend.
    func giveBack(_ permit: any SendPermit) async
    /// Sends one create on `permit`, never retried, if `lastCheck` (asked synchronously right
    /// before the request leaves) still says yes; otherwise nothing is sent and the call throws a
    /// `.withdrawn` failure. `userData` goes with it; no failure it throws contains the user
    /// data's secrets.
    func create(
        _ order: CreateOrder,
        userData: UserData?,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> AcceptedCreate
    /// Sends one DELETE on `permit`, as `create` does (its caller's last look, re-reading what the
    /// destroy rests on, comes before it: a failed one is tried again by a later pass).
    func destroy(
        dropletID: Int64,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> DestroyOutcome
    /// Local validation only: the reason the action can never succeed (an invalid name), or nil.
    func problem(with action: DropletActionOrder) -> String?
    /// Sends one droplet action (rename, power off, resize, power on, backups) or tag request on
    /// `permit`, never retried,
    /// as `create` does: a failure after sending is `.outcomeUnknown`; a droplet busy with
    /// another action is `.transient`.
    func perform(
        _ action: DropletActionOrder,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> AcceptedAction
    /// Assigns droplets to a project in one request (`POST /v2/projects/{id}/resources`) on
    /// `permit`, as `create` sends. Assigning again is harmless, so a lost answer is retried.
    func assign(
        dropletIDs: [Int64],
        toProject projectID: String,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws
    /// The progress of an action DigitalOcean accepted.
    func progress(ofAction id: Int64) async throws -> ActionProgress
    /// A droplet's recent actions, newest first (one page): whoever sent them.
    func actions(ofDroplet id: Int64) async throws -> [ObservedAction]
}

extension DropletCloud {
    /// All droplets tagged `citrus-host`, every page, read one after the other.
    public func listFleet() async throws -> FleetListing {
        var droplets: [ObservedDroplet] = []
        var cursor = FleetListCursor.first
        while true {
            let page = try await listFleetPage(cursor)
            droplets.append(contentsOf: page.droplets)
            guard let next = page.next else { return FleetListing(droplets: droplets, pages: cursor.page) }
            cursor = next
        }
    }
}

public struct AcceptedAction: Sendable, Hashable {
    /// The action to follow; nil when the answer carried the change out (a tag request).
    public var actionID: Int64?
    public var requestID: String?

    public init(actionID: Int64?, requestID: String?) {
        self.actionID = actionID
        self.requestID = requestID
    }
}

/// A create's `user_data`: the rendered cloud-init script, and the secrets inside it (the agent's
/// key), which must never leave the request. It prints as its size only.
public struct UserData: Sendable, CustomStringConvertible, CustomReflectable {
    public let text: String
    public let secrets: [String]

    public init(text: String, secrets: [String]) {
        self.text = text
        self.secrets = secrets
    }

    public var description: String { "user_data (\(text.utf8.count) bytes)" }
    public var customMirror: Mirror { Mirror(self, children: ["bytes": text.utf8.count]) }
}
