import Foundation

/// `POST /v2/droplets/{id}/actions`, `GET /v2/droplets/{id}/actions[/{action_id}]`,
/// `GET /v2/actions/{id}`.
extension SimulatedAccount {
    /// Checks the action, draws the faults aimed at it, starts it and answers 201 with it in progress.
    mutating func postAction(
        dropletID: Int64?,
        body: [UInt8],
        now: Date,
        _ context: ResponseContext
    ) -> APIResult {
        guard let id = dropletID, let droplet = droplets[id], droplet.apiStatus(at: now) != nil else {
            return .respond(notFound(context))
        }
        let request: ActionRequest
        do {
            request = try checkAction(body, for: droplet, now: now)
        } catch {
            return .respond(self.error(error.status, error.id, error.message, context))
        }
        let fault = takeActionFault(type: request.type, dropletID: id)
        if fault == .serverError { return .respond(serverError(context)) }
        let errored = fault == .errored || rng.chance(faults.actionErrorProbability)
        let action = startAction(request, on: droplet, now: now, ending: errored ? .errored : .completed)
        record(.actionStarted(action, by: context.requestedBy))
        switch fault {
        case .lostAnswer: return .drop
        case .serverErrorAfter: return .respond(serverError(context))
        case .serverError, .errored, nil: return .respond(json(201, ["action": render(action, now: now)], context))
        }
    }

    /// A droplet's actions, newest first, paged like every list.
    func listActions(
        dropletID: Int64?,
        query: [(String, String)],
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        guard let id = dropletID, let droplet = droplets[id], droplet.apiStatus(at: now) != nil else {
            return notFound(context)
        }
        return pagedList(
            "actions",
            actionHistory(of: droplet),
            query: query,
            path: "/v2/droplets/\(id)/actions",
            context
        ) {
            render($0, now: now)
        }
    }

    /// `GET /v2/actions/{id}`, or `GET /v2/droplets/{droplet_id}/actions/{id}` when `dropletID` is given.
    func readAction(
        id: Int64?,
        dropletID: Int64? = nil,
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        guard let id, let action = action(id: id), dropletID == nil || dropletID == action.dropletID else {
            return notFound(context)
        }
        return json(200, ["action": render(action, now: now)], context)
    }
}
