import Foundation
import Testing

@testable import DigitalOcean

/// `DigitalOceanError.answered`: what each non-2xx answer means, by table.
@Suite struct AnswerMappingTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var status: Int
        var id: String?
        var message: String?
        var kind: RequestKind
        var code: DigitalOceanError.Code
        /// Words the error's message must hold.
        var says: String

        var testDescription: String { "\(status) \(id ?? "-") \(kind) → \(code)" }
    }

    static let rows: [Row] = [
        Row(status: 400, id: "bad_request", message: "bad JSON", kind: .create, code: .validation, says: "bad JSON"),
        Row(
            status: 401,
            id: "unauthorized",
            message: "Unable to authenticate you",
            kind: .read,
            code: .unauthorized,
            says: "the token was refused"
        ),
        Row(
            status: 403,
            id: "forbidden",
            message: "You do not have access",
            kind: .action,
            code: .unauthorized,
            says: "droplet:update"
        ),
        Row(
            status: 404,
            id: "not_found",
            message: "The resource was not found.",
            kind: .read,
            code: .notFound,
            says: "The resource was not found."
        ),
        Row(status: 404, id: "not_found", message: "gone", kind: .action, code: .notFound, says: "gone"),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "Droplet already has a pending event.",
            kind: .action,
            code: .busy,
            says: "busy with another action"
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "Droplet is currently locked",
            kind: .action,
            code: .busy,
            says: "locked"
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "creating this/these droplet(s) will exceed your droplet limit",
            kind: .create,
            code: .capacity,
            says: "raise the account's droplet limit"
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "Size is not available in this region.",
            kind: .create,
            code: .capacity,
            says: "Size is not available in this region."
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "Region is not available",
            kind: .create,
            code: .capacity,
            says: "nothing was made"
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "Droplet must be powered off before resizing.",
            kind: .action,
            code: .validation,
            says: "powered off"
        ),
        Row(
            status: 422,
            id: "unprocessable_entity",
            message: "You specified an invalid size.",
            kind: .create,
            code: .validation,
            says: "invalid size"
        ),
        Row(status: 409, id: "conflict", message: "conflict", kind: .delete, code: .validation, says: "conflict"),
        Row(
            status: 429,
            id: "too_many_requests",
            message: "API rate limit exceeded.",
            kind: .read,
            code: .rateLimited,
            says: "hourly request limit"
        ),
        Row(status: 500, id: "server_error", message: "oops", kind: .read, code: .server, says: "oops"),
        Row(status: 503, id: nil, message: nil, kind: .delete, code: .server, says: "HTTP 503 without"),
        Row(
            status: 500,
            id: "server_error",
            message: "oops",
            kind: .create,
            code: .outcomeUnknown,
            says: "look for it by tag"
        ),
        Row(
            status: 502,
            id: nil,
            message: nil,
            kind: .action,
            code: .outcomeUnknown,
            says: "may or may not have been performed"
        ),
    ]

    static func body(_ row: Row) -> Data {
        guard let id = row.id, let message = row.message else { return Data("<html>bad gateway</html>".utf8) }
        return Data(#"{"id":"\#(id)","message":"\#(message)","request_id":"body-\#(row.status)"}"#.utf8)
    }

    @Test(arguments: rows) func statusMapsToCode(_ row: Row) {
        let error = DigitalOceanError.answered(
            status: row.status,
            headers: [("X-Request-Id", "header-id")],
            body: Self.body(row),
            operation: "OP /v2/x",
            kind: row.kind
        )
        #expect(error.code == row.code)
        #expect(error.message.contains(row.says), "\(error.message)")
        #expect(error.httpStatus == row.status)
        #expect(error.operation == "OP /v2/x")
        #expect(error.apiErrorID == row.id)
        // The body's request id wins; the header's stands in when the body has none.
        #expect(error.requestID == (row.id == nil ? "header-id" : "body-\(row.status)"))
    }

    @Test func busyIsTransientAndOtherValidationIsPermanent() {
        let busy = DigitalOceanError.answered(
            status: 422,
            headers: [],
            body: Data(#"{"id":"unprocessable_entity","message":"Droplet already has a pending event."}"#.utf8),
            operation: "POST /v2/droplets/1/actions",
            kind: .action
        )
        #expect(busy.code == .busy && busy.isTransient)
        #expect(busy.apiErrorID == "unprocessable_entity")
        #expect(busy.message.contains("Droplet already has a pending event."))
        let invalid = DigitalOceanError.answered(
            status: 422,
            headers: [],
            body: Data(#"{"id":"unprocessable_entity","message":"Droplet is already powered off."}"#.utf8),
            operation: "POST /v2/droplets/1/actions",
            kind: .action
        )
        #expect(invalid.code == .validation && invalid.isPermanent)
    }

    @Test func rateLimitCarriesItsHeadersAndThePause() {
        let pause = Date(timeIntervalSince1970: 1_700_000_100)
        let perMinute = DigitalOceanError.answered(
            status: 429,
            headers: [("Retry-After", "7"), ("RateLimit-Reset", "1700000090"), ("ratelimit-remaining", "0")],
            body: Data(#"{"id":"too_many_requests","message":"API rate limit exceeded."}"#.utf8),
            operation: "GET /v2/droplets",
            kind: .read,
            pausedUntil: pause
        )
        #expect(perMinute.code == .rateLimited)
        #expect(perMinute.retryAfter == .seconds(7))
        #expect(perMinute.rateLimitResetAt == Date(timeIntervalSince1970: 1_700_000_090))
        #expect(perMinute.message.contains("per-minute request limit"))
        #expect(perMinute.message.contains("every call waits until \(pause)"))
    }

    @Test func secretsAreCutOutBeforeTheMessageIsCapped() {
        let secret = "dop_v1_" + String(repeating: "s", count: 64)
        // The secret straddles the 1 KiB cap: cutting first would leave part of it behind.
        let message = String(repeating: "x", count: ErrorText.limit - 20) + secret + String(repeating: "y", count: 100)
        let error = DigitalOceanError.answered(
            status: 422,
            headers: [],
            body: Data(#"{"id":"unprocessable_entity","message":"\#(message)"}"#.utf8),
            operation: "POST /v2/droplets",
            kind: .create,
            secrets: [secret]
        )
        #expect(!error.message.contains("dop_v1_"))
        #expect(!error.message.contains("sssss"))
        #expect(error.message.contains("[redacted]"))
    }

    @Test(arguments: [
        (RequestKind.create, true, DigitalOceanError.Code.outcomeUnknown, "look for it by tag"),
        (.action, true, .outcomeUnknown, "may or may not have been performed"),
        (.action, false, .transport, "could not reach DigitalOcean"),
        (.create, false, .transport, "could not reach DigitalOcean"),
        (.read, true, .transport, "could not reach DigitalOcean"),
        (.delete, true, .transport, "could not reach DigitalOcean"),
    ])
    func noAnswerMeansUnknownOnlyForOnceOnlyRequestsThatMayHaveLeft(
        kind: RequestKind,
        sentMaybe: Bool,
        code: DigitalOceanError.Code,
        says: String
    ) {
        let error = DigitalOceanError.unanswered(
            summary: "timed out",
            underlying: "HTTPClientError",
            sentMaybe: sentMaybe,
            operation: "OP /v2/x",
            kind: kind,
            baseURL: "http://127.0.0.1:1"
        )
        #expect(error.code == code)
        #expect(error.message.contains(says) && error.message.contains("timed out"))
        #expect(error.underlying == "HTTPClientError")
        #expect(error.operation == "OP /v2/x")
    }
}
