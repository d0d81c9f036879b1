#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `/v2/droplets`: create, list, read, delete.
extension DigitalOceanClient {
    /// `POST /v2/droplets` with a single `name`. Validates locally first; sent once, never resent.
    ///
    /// With a `clearance` (see ``SendClearance``) it is sent on the caller's permit, and only if
    /// its last check still says yes; without one, as soon as the budget lets it go.
    public func createDroplet(
        _ request: DropletCreateRequest,
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> CreatedDroplet {
        do {
            return try await sendCreate(request, clearance: clearance)
        } catch {
            throw request.redacting(error)  // an answer may echo the body, user_data included
        }
    }

    private func sendCreate(
        _ request: DropletCreateRequest,
        clearance: SendClearance?
    ) async throws(DigitalOceanError) -> CreatedDroplet {
        let body = try await beforeSending(clearance) { () throws(DigitalOceanError) -> Data in
            try request.validate()
            return try Self.encoded(request, what: "create")
        }
        let response = try await perform(
            .POST,
            "/v2/droplets",
            body: body,
            kind: .create,
            clearance: clearance,
            secrets: request.secrets
        )
        let decoded = try decode(DropletCreateResponse.self, from: response) { error in
            // Accepted, but we cannot read the id: the droplet exists and we do not know which it is.
            var failure = Self.acceptedButUnreadable(
                "the create",
                response: response,
                advice: "look for the droplet by tag before creating again"
            )
            failure.operation = "POST /v2/droplets"
            failure.underlying = ErrorText.capped(scrubbed(String(describing: error), secrets: request.secrets))
            return failure
        }
        return CreatedDroplet(
            droplet: decoded.droplet,
            actions: decoded.links?.actions ?? [],
            requestID: response.requestID
        )
    }

    /// `GET /v2/droplets?tag_name=…&per_page=200`, following `links.pages.next` until there is none.
    /// With `tag == nil`, lists every (non-GPU) droplet of the account.
    public func listDroplets(tag: String?) async throws(DigitalOceanError) -> [Droplet] {
        try await listDropletPages(tag: tag).droplets
    }

    /// `listDroplets(tag:)`, with the number of pages it took and each page's request id. One page
    /// is one consistent answer; several pages can miss a droplet that shifted between them while
    /// they were read.
    public func listDropletPages(
        tag: String?
    ) async throws(DigitalOceanError) -> (droplets: [Droplet], pages: Int, requestIDs: [String]) {
        var droplets: [Droplet] = []
        var requestIDs: [String] = []
        var seen: Set<String> = []
        var link: String?
        for pageNumber in 1...max(1, configuration.maximumPages) {
            let page = try await dropletPage(tag: tag, number: pageNumber, link: link)
            droplets.append(contentsOf: page.droplets)
            if let id = page.requestID { requestIDs.append(id) }
            guard let next = page.next else { return (droplets, pageNumber, requestIDs) }
            if let link { seen.insert(link) }
            if seen.contains(next) {
                throw Self.pagingFault(
                    "page \(pageNumber) links back to a page already read: \(ErrorText.capped(next))"
                )
            }
            link = next
        }
        throw Self.pagingFault("the droplet list did not end within \(configuration.maximumPages) pages")
    }

    /// One page of `GET /v2/droplets?tag_name=…&per_page=200`: page `number` (from 1) at `link`, the
    /// address the page before gave as its next (nil for the first page). The page's `next` is the
    /// address of the one after it, checked to be a droplet list that goes forward.
    public func dropletPage(
        tag: String?,
        number: Int,
        link: String?
    ) async throws(DigitalOceanError) -> DropletPage {
        guard number <= configuration.maximumPages else {
            throw Self.pagingFault("the droplet list did not end within \(configuration.maximumPages) pages")
        }
        let pathAndQuery: String
        if let link {
            pathAndQuery = link
        } else {
            if let tag { try DropletCreateRequest.validateTag(tag) }
            var query = [("per_page", String(configuration.pageSize))]
            if let tag { query.insert(("tag_name", tag), at: 0) }
            pathAndQuery = "/v2/droplets?" + Self.encodeQuery(query)
        }
        let response = try await perform(.GET, pathAndQuery, kind: .read)
        let page = try decode(DropletListResponse.self, from: response) { error in
            undecodable(error, operation: "GET /v2/droplets", response: response)
        }
        var nextPath: String?
        if let next = page.links?.pages?.next, !next.isEmpty {
            guard let path = Self.pathAndQuery(of: next), path.hasPrefix("/v2/droplets") else {
                throw Self.pagingFault("page \(number) links to an unexpected next page: \(ErrorText.capped(next))")
            }
            guard path != pathAndQuery else {
                throw Self.pagingFault("page \(number) links back to itself: \(ErrorText.capped(next))")
            }
            nextPath = path
        }
        return DropletPage(
            droplets: page.droplets ?? [],
            next: nextPath,
            total: page.meta?.total,
            requestID: response.requestID
        )
    }

    static func pagingFault(_ message: String) -> DigitalOceanError {
        var failure = DigitalOceanError(code: .server, message: message)
        failure.operation = "GET /v2/droplets"
        return failure
    }

    /// `GET /v2/droplets/{id}`. A missing droplet throws `.notFound`.
    public func droplet(id: Int64) async throws(DigitalOceanError) -> Droplet {
        let response = try await perform(.GET, "/v2/droplets/\(id)", kind: .read)
        return try decode(DropletResponse.self, from: response) { error in
            undecodable(error, operation: "GET /v2/droplets/\(id)", response: response)
        }.droplet
    }

    /// `DELETE /v2/droplets/{id}`: 204 → `.deleted`, 404 → `.alreadyGone`, each with its request id.
    /// With a `clearance` (see ``SendClearance``: the caller's last look before it) it is sent
    /// once, on the caller's permit; without one, retried like a read.
    public func deleteDroplet(
        id: Int64,
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> DeleteOutcome {
        do {
            return .deleted(
                requestID: try await perform(.DELETE, "/v2/droplets/\(id)", kind: .delete, clearance: clearance)
                    .requestID
            )
        } catch  where error.code == .notFound {
            return .alreadyGone(requestID: error.requestID)
        }
    }

    // MARK: - Helpers for mutations

    static func encoded(_ body: some Encodable, what: String) throws(DigitalOceanError) -> Data {
        do {
            return try JSONEncoder().encode(body)
        } catch {
            throw .localValidation("could not encode the \(what) request: \(error)")
        }
    }

    /// A once-only request was accepted, but its answer cannot be read: it was done, and we do not
    /// know what it made.
    static func acceptedButUnreadable(_ what: String, response: Response, advice: String) -> DigitalOceanError {
        var failure = DigitalOceanError(
            code: .outcomeUnknown,
            message: "\(what) was accepted (HTTP \(response.status)) but its answer could not be read; \(advice)"
        )
        failure.httpStatus = response.status
        failure.requestID = response.requestID
        return failure
    }
}
