#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Droplet actions: `POST /v2/droplets/{id}/actions`, `GET /v2/actions/{id}`,
/// `GET /v2/droplets/{id}/actions`.
extension DigitalOceanClient {
    /// Starts an action on a droplet (`201 {"action": …}`, status `in-progress`). Validates locally
    /// first, then, like ``createDroplet(_:clearance:)``, waits on the rate budget (or spends the
    /// caller's permit), asks the caller's last check, and sends
    /// once, never again: a lost answer, a timeout after sending or a 5xx throws `.outcomeUnknown`
    /// (the action may have been performed; look at the droplet and its actions before sending it
    /// again).
    ///
    /// - `.busy`: a 422 saying the droplet already has a pending event; send it later.
    /// - `.validation`: any other 422 (resize while on, a smaller disk, already off, …), with
    ///   DigitalOcean's message.
    /// - `.notFound`: no such droplet.
    public func performDropletAction(
        dropletID: Int64,
        _ request: DropletActionRequest,
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> (action: DropletAction, requestID: String?) {
        let body = try await beforeSending(clearance) { () throws(DigitalOceanError) -> Data in
            try Self.validateID(dropletID, "droplet")
            try request.validate()
            return try Self.encoded(request, what: request.type)
        }
        let operation = "POST /v2/droplets/\(dropletID)/actions"
        let response = try await perform(
            .POST,
            "/v2/droplets/\(dropletID)/actions",
            body: body,
            kind: .action,
            clearance: clearance
        )
        let decoded = try decode(DropletActionResponse.self, from: response) { error in
            var failure = Self.acceptedButUnreadable(
                "the \(request.type) action",
                response: response,
                advice: "look at the droplet's actions before sending it again"
            )
            failure.operation = operation
            failure.underlying = ErrorText.capped(scrubbed(String(describing: error), secrets: []))
            return failure
        }
        return (decoded.action, response.requestID)
    }

    /// `GET /v2/actions/{id}`: an action's progress. A missing action throws `.notFound`.
    public func action(id: Int64) async throws(DigitalOceanError) -> DropletAction {
        try Self.validateID(id, "action")
        let response = try await perform(.GET, "/v2/actions/\(id)", kind: .read)
        return try decode(DropletActionResponse.self, from: response) { error in
            undecodable(error, operation: "GET /v2/actions/\(id)", response: response)
        }.action
    }

    /// `GET /v2/droplets/{id}/actions?per_page=20`: the droplet's latest actions (the first page;
    /// DigitalOcean lists the newest first). A missing droplet throws `.notFound`.
    public func dropletActions(dropletID: Int64) async throws(DigitalOceanError) -> [DropletAction] {
        try Self.validateID(dropletID, "droplet")
        let response = try await perform(.GET, "/v2/droplets/\(dropletID)/actions?per_page=20", kind: .read)
        return try decode(DropletActionListResponse.self, from: response) { error in
            undecodable(error, operation: "GET /v2/droplets/\(dropletID)/actions", response: response)
        }.actions ?? []
    }

    /// Ids are integers of at least 1 (`parameters.yml`): anything else would only earn a 404.
    static func validateID(_ id: Int64, _ what: String) throws(DigitalOceanError) {
        guard id >= 1 else { throw .localValidation("\(what) id \(id) is not valid; ids start at 1") }
    }
}
