import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The client's half of droplet actions: bodies as the spec writes them, the spec's action object,
/// local validation, and what a failed action means.
@Suite struct DropletActionClientTests {
    static func json(_ request: DropletActionRequest) throws -> [String: JSONValue] {
        guard case .object(let pairs) = try JSONValue.parse(try JSONEncoder().encode(request)) else { return [:] }
        return Dictionary(uniqueKeysWithValues: pairs)
    }

    @Test func requestsEncodeToTheSpecsBodies() throws {
        // models/droplet_actions.yml and the spec's curl examples.
        #expect(try Self.json(.rename(name: "nifty-new-name")) == ["type": "rename", "name": "nifty-new-name"])
        #expect(try Self.json(.powerOff) == ["type": "power_off"])
        #expect(try Self.json(.powerOn) == ["type": "power_on"])
        #expect(
            try Self.json(.resize(size: "s-2vcpu-2gb", disk: true)) == [
                "type": "resize", "size": "s-2vcpu-2gb", "disk": true,
            ]
        )
        #expect(
            try Self.json(.resize(size: "s-1vcpu-2gb", disk: false)) == [
                "type": "resize", "size": "s-1vcpu-2gb", "disk": false,
            ]
        )
        #expect(DropletActionRequest.powerOff.type == "power_off")
        #expect(DropletActionRequest.resize(size: "s-1vcpu-1gb", disk: false).type == "resize")
    }

    @Test func theSpecsExampleActionDecodes() throws {
        // resources/droplets/responses/all_droplet_actions.yml, its example.
        let body = """
            {"actions":[{"id":982864273,"status":"completed","type":"create","started_at":"2020-07-20T19:37:30Z",
            "completed_at":"2020-07-20T19:37:45Z","resource_id":3164444,"resource_type":"droplet",
            "region":{"name":"New York 3","slug":"nyc3","features":["private_networking","backups","ipv6","metadata",
            "install_agent","image_transfer"],"available":true,"sizes":["s-1vcpu-1gb","s-1vcpu-2gb"]},
            "region_slug":"nyc3"}],"links":{},"meta":{"total":1}}
            """
        let list = try DigitalOceanJSON.decoder().decode(DropletActionListResponse.self, from: Data(body.utf8))
        let action = try #require(list.actions?.first)
        #expect(action.id == 982_864_273)
        #expect(action.status == .completed && action.status.isFinished)
        #expect(action.type == "create")
        #expect(action.startedAt == Date(timeIntervalSince1970: 1_595_273_850))
        #expect(action.completedAt == Date(timeIntervalSince1970: 1_595_273_865))
        #expect(action.resourceID == 3_164_444 && action.resourceType == "droplet")
        #expect(action.regionSlug == "nyc3")
    }

    @Test func anInProgressActionAndAnUnknownStatusDecode() throws {
        let body = """
            {"action":{"id":5000000000,"status":"paused-by-ops","type":"power_off","started_at":"2024-01-02T03:04:05Z",
            "completed_at":null,"resource_id":5000000001,"resource_type":"droplet","region":{"slug":"sfo3"},
            "region_slug":null}}
            """
        let action = try DigitalOceanJSON.decoder().decode(DropletActionResponse.self, from: Data(body.utf8)).action
        #expect(action.status.rawValue == "paused-by-ops")
        #expect(!action.status.isFinished)
        #expect(action.completedAt == nil)
        #expect(action.id == 5_000_000_000)
        #expect(action.regionSlug == "sfo3")  // region_slug null: the region object's slug
        let inProgress = try DigitalOceanJSON.decoder().decode(
            DropletAction.self,
            from: Data(#"{"id":1,"status":"in-progress","type":"rename"}"#.utf8)
        )
        #expect(inProgress.status == .inProgress && inProgress.startedAt == nil)
    }

    @Test func invalidActionsFailLocallyWithTheCreateRequestsWords() async throws {
        try await withClient { client, sim in
            let bad: [(Int64, DropletActionRequest, String)] = [
                (7, .rename(name: "web_1"), "\"_\" at position 4; only letters, digits, '.' and '-'"),
                (7, .rename(name: "web-"), "must end with a letter or a digit"),
                (7, .rename(name: ""), "droplet name must not be empty"),
                (7, .rename(name: String(repeating: "a", count: 256)), "at most 255"),
                (7, .resize(size: "", disk: false), "size must not be empty"),
                (7, .resize(size: "s-1vcpu 1gb", disk: false), "\" \" at position 8"),
                (7, .resize(size: "../../v2/account", disk: true), "\"/\" at position 3"),
                (0, .powerOff, "droplet id 0 is not valid"),
            ]
            for (id, request, phrase) in bad {
                let error = await expectFailure { () async throws(DigitalOceanError) in
                    try await client.performDropletAction(dropletID: id, request)
                }
                #expect(error?.code == .validation)
                #expect(error?.message.contains(phrase) == true, "\(String(describing: error)) should say \(phrase)")
            }
            #expect(sim.simulator.requestLog().isEmpty)
            // The create request refuses the same names.
            #expect(throws: DigitalOceanError.self) { try DropletCreateRequest(name: "web_1").validate() }
            try DropletActionRequest.rename(name: String(repeating: "a", count: 255)).validate()
            try DropletActionRequest.resize(size: "so1_5-2vcpu-16gb", disk: false).validate()
        }
    }

    @Test func aServerErrorOnAnActionIsOutcomeUnknownAndNeverResent() async throws {
        try await withClient { client, sim in
            let droplet = try sim.simulator.inject(.init(name: "busy-1"))
            sim.simulator.updateFaults { $0.failNextRequests = 3 }
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: droplet.id, .powerOff)
            }
            #expect(error?.code == .outcomeUnknown)
            #expect(error?.httpStatus == 500)
            #expect(error?.attempts == 1)
            #expect(error?.operation == "POST /v2/droplets/\(droplet.id)/actions")
            #expect(error?.requestID != nil && error?.requestID == sim.simulator.requestLog().last?.requestID)
            #expect(sim.simulator.requestLog().count == 1)
            // A read after it is retried through the two faults left.
            sim.simulator.clearRequestLog()
            _ = try await client.droplet(id: droplet.id)
            #expect(sim.simulator.requestLog().map(\.status) == [500, 500, 200])
        }
    }

    @Test(
        "a cleared request whose last check says no sends nothing; it, and one that does not validate, give the permit back"
    )
    func aWithdrawnActionSendsNothing() async throws {
        try await withClient { client, sim in
            let droplet = try sim.simulator.inject(.init(name: "gated-1"))
            let permit = try await client.permit()
            #expect(await client.rateBudget.snapshot.inFlight == 1)
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(
                    dropletID: droplet.id,
                    .powerOff,
                    clearance: SendClearance(permit: permit, lastCheck: { false })
                )
            }
            #expect(error?.code == .withdrawn)
            #expect(await client.rateBudget.snapshot.inFlight == 0)
            let invalid = try await client.permit()
            let refused = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(
                    dropletID: droplet.id,
                    .rename(name: "web_1"),
                    clearance: SendClearance(permit: invalid, lastCheck: { true })
                )
            }
            #expect(refused?.code == .validation)
            #expect(await client.rateBudget.snapshot.inFlight == 0)
            #expect(sim.simulator.requestLog().isEmpty)
        }
    }

    @Test("a cleared DELETE is sent once on its permit: a 500 is not resent (its caller looks again first)")
    func aClearedDeleteIsSentOnce() async throws {
        try await withClient { client, sim in
            let droplet = try sim.simulator.inject(.init(name: "gone-1"))
            sim.simulator.updateFaults { $0.failNextRequests = 1 }
            let permit = try await client.permit()
            let error = await expectFailure { () async throws(DigitalOceanError) in
                _ = try await client.deleteDroplet(
                    id: droplet.id,
                    clearance: SendClearance(permit: permit, lastCheck: { true })
                )
            }
            #expect(error?.httpStatus == 500)
            #expect(sim.simulator.requestLog().count == 1)
            #expect(await client.rateBudget.snapshot.inFlight == 0)
            // Without a clearance the same DELETE is retried like a read.
            sim.simulator.clearRequestLog()
            sim.simulator.updateFaults { $0.failNextRequests = 1 }
            _ = try await client.deleteDroplet(id: droplet.id)
            #expect(sim.simulator.requestLog().map(\.status) == [500, 204])
        }
    }
}
