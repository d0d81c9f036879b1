import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Logging
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// What reaches `last_error`, STATUS= and the journal from the client: never the token, never
/// AsyncHTTPClient's own description of an error, never more than about 1 KiB of DigitalOcean's text.
@Suite("Error text: no token, fixed wording, capped")
struct ErrorTextTests {
    /// A token AsyncHTTPClient refuses to put in a header: its error used to quote the header.
    @Test("a token the HTTP client refuses fails in our words: the token is in no error text, nothing is sent")
    func refusedHeaderNeverEchoesTheToken() async throws {
        let secret = "dop_v1_SECRET\u{07}token_0123456789"
        try await withClient(token: secret) { client, sim in
            let read = await expectFailure { () async throws(DigitalOceanError) in
                try await client.listDroplets(tag: "citrus-host")
            }
            let create = await expectFailure { () async throws(DigitalOceanError) in
                try await client.createDroplet(DropletCreateRequest(name: "web-1"))
            }
            for error in [read, create] {
                let error = try #require(error)
                let texts = ["\(error)", String(reflecting: error), error.message, error.underlying ?? ""]
                for text in texts {
                    #expect(!text.contains("SECRET"), "the token leaked: \(text)")
                    #expect(!text.contains("Bearer"), "the header leaked: \(text)")
                }
                #expect(error.message.contains("the HTTP client refused a request header"), "\(error.message)")
            }
            #expect(sim.simulator.requestLog().isEmpty, "a request went out: \(sim.simulator.requestLog())")
        }
    }

    @Test("transport errors are described in fixed words, whatever their own description says")
    func transportSummaryIsFixedWording() {
        let secret = "dop_v1_SECRET"
        #expect(
            ErrorText.transportSummary(of: HTTPClientError.invalidHeaderFieldValues(["Bearer \(secret)"])).contains(
                secret
            ) == false
        )
        #expect(
            ErrorText.transportSummary(of: HTTPClientError.invalidHeaderFieldNames(["x-\(secret)"])).contains(secret)
                == false
        )
        #expect(
            ErrorText.transportSummary(of: HTTPClientError.unsupportedScheme(secret))
                == "HTTP client error: unsupported scheme"
        )
        #expect(ErrorText.transportSummary(of: HTTPClientError.deadlineExceeded) == "timed out")
        #expect(ErrorText.transportSummary(of: HTTPClientError.remoteConnectionClosed) == "the connection was closed")
        struct Chatty: Error, CustomStringConvertible {
            var description: String { "Authorization: Bearer dop_v1_SECRET" }
        }
        #expect(ErrorText.transportSummary(of: Chatty()) == "unexpected Chatty")
    }

    @Test("an error is redacted of the token wherever it could hide")
    func errorsAreRedacted() {
        let token = "dop_v1_0123456789abcdef"
        var error = DigitalOceanError(code: .server, message: "echo: Bearer \(token)")
        error.underlying = "header \(token)"
        error.apiErrorID = token
        error.requestID = "req-\(token)"
        let redacted = error.redacting(token: token)
        for text in ["\(redacted)", String(reflecting: redacted)] {
            #expect(!text.contains(token), "\(text)")
            #expect(text.contains("[redacted]"), "\(text)")
        }
    }

    @Test("DigitalOcean's error text is capped near 1 KiB, saying it was cut")
    func apiErrorTextIsCapped() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.createRefusedEchoingBody = true }  // a 422 that quotes the whole request
            var request = DropletCreateRequest(name: "web-1")
            request.userData = String(repeating: "#!/bin/sh\necho hello\n", count: 2500)  // about 50 KiB
            let error = try #require(
                await expectFailure { () async throws(DigitalOceanError) in try await client.createDroplet(request) }
            )
            #expect(error.code == .validation)
            #expect(error.message.utf8.count <= ErrorText.limit + 64, "\(error.message.utf8.count) bytes")
            #expect(error.message.contains("… [cut: "), "\(error.message.suffix(80))")
            #expect("\(error)".utf8.count < 2 * ErrorText.limit)
        }
    }

    @Test(
        "a secret of the request that an echo quotes is redacted before the echo is cut, so no cut leaves part of it behind"
    )
    func secretsRedactedBeforeTheCut() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.createRefusedEchoingBody = true }
            let key = String(repeating: "0123456789abcdef", count: 4)
            let head = "cannot create a droplet from {\"user_data\":\""
            // Wherever the echo puts it, some padding places the key across the 1 KiB cut.
            for padding in stride(from: ErrorText.limit - head.utf8.count - 200, through: ErrorText.limit, by: 16) {
                var request = DropletCreateRequest(name: "web-1")
                request.userData =
                    String(repeating: "x", count: max(0, padding)) + key + String(repeating: "y", count: 2000)
                request.secrets = [key]
                let error = try #require(
                    await expectFailure { () async throws(DigitalOceanError) in try await client.createDroplet(request)
                    }
                )
                #expect(!"\(error)".contains(key.prefix(12)), "part of the key survived the cut at padding \(padding)")
            }
        }
    }

    @Test("capping cuts on a character boundary and leaves short text alone")
    func cappingKeepsCharactersWhole() {
        #expect(ErrorText.capped("short") == "short")
        let exact = String(repeating: "a", count: 1024)
        #expect(ErrorText.capped(exact) == exact)
        let lemons = String(repeating: "🍋", count: 300)  // 4 bytes each, 1200 bytes
        let cut = ErrorText.capped(lemons)
        #expect(cut == String(repeating: "🍋", count: 256) + "… [cut: 1200 bytes in all]")
    }

    @Test("a token is printable ASCII without spaces, at most 4 KiB; the reason never quotes it")
    func tokenCharacters() {
        #expect(DigitalOceanToken.problem(with: "dop_v1_0123456789abcdef") == nil)
        for bad in [
            "dop\u{07}v1", "dop v1", "dop\tv1", "dópv1", "dop\u{7F}", "dop\r\nX-Evil: 1",
            String(repeating: "a", count: 4097), "",
        ] {
            let problem = DigitalOceanToken.problem(with: bad)
            #expect(problem != nil, "accepted \(bad.debugDescription)")
            #expect(problem.map { !$0.contains("dop") } ?? true, "\(problem ?? "")")
        }
    }
}
