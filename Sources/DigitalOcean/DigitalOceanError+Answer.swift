#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a request does to the account, which decides what a failure means and whether the
/// transport may send it again.
enum RequestKind: Sendable, Equatable {
    /// A GET: resent on 429, 5xx and transport errors.
    case read
    /// `POST /v2/droplets`: sent once (DigitalOcean has no idempotency key).
    case create
    /// `POST /v2/droplets/{id}/actions`: sent once, like a create.
    case action
    /// A DELETE: idempotent, resent like a read.
    case delete
    /// A change to a droplet other than an action (tag, untag, assign to a project): sent once,
    /// like an action, so that a caller's last look comes before every send.
    case update
    /// A write whose second copy changes nothing (`POST /v2/tags` for a tag that may exist): resent
    /// like a read.
    case ensure

    var priority: RequestPriority { self == .read ? .read : .mutation }
    /// Whether a second copy is harmless.
    var resendable: Bool { self == .read || self == .delete || self == .ensure }
}

extension DigitalOceanError {
    /// The error a non-2xx answer means: status, headers and body in, error out, with no I/O, so
    /// every case is tested by table (`AnswerMappingTests`).
    ///
    /// - `pausedUntil`: for a 429, until when the rate budget now holds every call.
    /// - `secrets`: texts (the token, a create's user_data secrets) cut out of DigitalOcean's words
    ///   before those are capped, so no cut can leave part of one behind.
    static func answered(
        status: Int,
        headers: [(name: String, value: String)],
        body: Data,
        operation: String,
        kind: RequestKind,
        pausedUntil: Date? = nil,
        secrets: [String] = []
    ) -> DigitalOceanError {
        let apiError = try? JSONDecoder().decode(APIErrorBody.self, from: body)
        let rate = RateLimitHeaders(headers: headers)
        let headerRequestID = headers.first { $0.name.lowercased() == "x-request-id" }?.value
        // DigitalOcean's words, as many as an operator reads: the rest would only bloat last_error.
        let detail =
            apiError?.message.map { message in
                ErrorText.capped(secrets.reduce(message) { ErrorText.redacting($1, in: $0) })
            } ?? "HTTP \(status) without a DigitalOcean error body"

        var failure: DigitalOceanError
        switch status {
        case 429:
            failure = DigitalOceanError(
                code: .rateLimited,
                message:
                    "the \(rate.retryAfter != nil ? "per-minute" : "hourly") request limit is exhausted (\(detail))"
                    + (pausedUntil.map { "; every call waits until \($0)" } ?? "")
            )
            failure.retryAfter = rate.retryAfter
            failure.rateLimitResetAt = rate.reset
        case 401:
            failure = DigitalOceanError(
                code: .unauthorized,
                message: "the token was refused (\(detail)); check that it is valid and not revoked"
            )
        case 403:
            failure = DigitalOceanError(
                code: .unauthorized,
                message: "the token lacks a permission (\(detail)); it needs droplet:create, droplet:read, "
                    + "droplet:update, droplet:delete, actions:read, tag:create, tag:read and image:read; "
                    + "with ssh keys ssh_key:read, with a VPC vpc:read, to untag tag:delete, "
                    + "to assign projects project:assign_resource"
            )
        case 404:
            failure = DigitalOceanError(code: .notFound, message: detail)
        case 422 where Self.saysDropletIsBusy(apiError?.message):
            failure = DigitalOceanError(
                code: .busy,
                message: "the droplet is busy with another action (\(detail)); try again once that action is done"
            )
        case 422 where Self.saysNoCapacity(apiError?.message):
            failure = DigitalOceanError(
                code: .capacity,
                message: "DigitalOcean cannot take this droplet now (\(detail)); nothing was made, and it is asked "
                    + "again with backoff: raise the account's droplet limit, or wait for the region's capacity"
            )
        case 500...:
            switch kind {
            case .create:
                failure = DigitalOceanError(
                    code: .outcomeUnknown,
                    message: "DigitalOcean answered the create with HTTP \(status) (\(detail)); the droplet may or "
                        + "may not exist, look for it by tag before creating again"
                )
            case .action:
                failure = DigitalOceanError(
                    code: .outcomeUnknown,
                    message: "DigitalOcean answered the action with HTTP \(status) (\(detail)); it may or may not "
                        + "have been performed, look at the droplet and its actions before sending it again"
                )
            case .update:
                failure = DigitalOceanError(
                    code: .outcomeUnknown,
                    message: "DigitalOcean answered with HTTP \(status) (\(detail)); the change may or may not "
                        + "have been made, read the droplet before sending it again"
                )
            case .read, .delete, .ensure:
                failure = DigitalOceanError(code: .server, message: detail)
            }
        default:
            // 400, 422 and any other 4xx: the request itself is at fault.
            failure = DigitalOceanError(code: .validation, message: detail)
        }
        failure.operation = operation
        failure.httpStatus = status
        failure.apiErrorID = apiError?.id.map { ErrorText.capped($0, limit: 128) }
        failure.requestID = (apiError?.requestID ?? headerRequestID).map { ErrorText.capped($0, limit: 128) }
        return failure
    }

    /// Whether a 422's message says the droplet already has a pending event (an action in
    /// progress locks it). DigitalOcean gives such a 422 the same `unprocessable_entity` id as a
    /// bad request, so only its words tell them apart: "Droplet already has a pending event."
    static func saysDropletIsBusy(_ message: String?) -> Bool {
        guard let message = message?.lowercased() else { return false }
        return message.contains("pending event") || message.contains("locked")
    }

    /// Whether a 422's message says the account or the region cannot take a droplet now, rather
    /// than that the request is wrong. DigitalOcean's words, as reported by its users: "creating
    /// this/these droplet(s) will exceed your droplet limit", "Size is not available in this
    /// region.", "Region is not available", "size is unavailable".
    static func saysNoCapacity(_ message: String?) -> Bool {
        guard let message = message?.lowercased() else { return false }
        return message.contains("droplet limit") || message.contains("not available")
            || message.contains("unavailable") || message.contains("capacity")
    }

    /// The error for a request that got no answer. `sentMaybe`: the request may have left (the
    /// error came after connecting); for a create or an action that means it may have been done.
    static func unanswered(
        summary: String,
        underlying: String,
        sentMaybe: Bool,
        operation: String,
        kind: RequestKind,
        baseURL: String
    ) -> DigitalOceanError {
        var failure: DigitalOceanError
        switch (kind, sentMaybe) {
        case (.create, true):
            failure = DigitalOceanError(
                code: .outcomeUnknown,
                message: "the create was sent but no answer came (\(summary)); the droplet may or may not exist, "
                    + "look for it by tag before creating again"
            )
        case (.action, true):
            failure = DigitalOceanError(
                code: .outcomeUnknown,
                message: "the action was sent but no answer came (\(summary)); it may or may not have been "
                    + "performed, look at the droplet and its actions before sending it again"
            )
        case (.update, true):
            failure = DigitalOceanError(
                code: .outcomeUnknown,
                message: "the change was sent but no answer came (\(summary)); it may or may not have been "
                    + "made, read the droplet before sending it again"
            )
        default:
            failure = DigitalOceanError(
                code: .transport,
                message: "could not reach DigitalOcean at \(baseURL): \(summary)"
            )
        }
        failure.operation = operation
        failure.underlying = underlying
        return failure
    }
}
