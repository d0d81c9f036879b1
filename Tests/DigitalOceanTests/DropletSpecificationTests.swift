import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel

/// Issue 25's droplet specification on the client's side: the create body with SSH keys, a VPC and
/// the droplet agent, the bodies of tags, projects and the new actions, and what is refused
/// before anything is sent.
@Suite struct DropletSpecificationTests {
    static func body(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static let fingerprint = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"

    @Test func keysAreIntegersOrStringsAndTheNewFieldsAreSentOnlyWhenSet() throws {
        var request = DropletCreateRequest(name: "web-1", tags: ["citrus-host"])
        // Unset, the body is the one the daemon always sent.
        #expect(
            try Self.body(request)
                == #"{"backups":false,"image":"ubuntu-22-04-x64","ipv6":true,"monitoring":true,"name":"web-1","region":"sfo3","size":"s-1vcpu-512mb-10gb","tags":["citrus-host"]}"#
        )
        request.sshKeys = [.id(512_189), .fingerprint(Self.fingerprint)]
        request.vpcUUID = "760e09ef-dc84-11e8-981e-3cfdfeaae000"
        request.withDropletAgent = false
        #expect(
            try Self.body(request)
                == #"{"backups":false,"image":"ubuntu-22-04-x64","ipv6":true,"monitoring":true,"name":"web-1","region":"sfo3","size":"s-1vcpu-512mb-10gb","ssh_keys":[512189,"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"],"tags":["citrus-host"],"vpc_uuid":"760e09ef-dc84-11e8-981e-3cfdfeaae000","with_droplet_agent":false}"#
        )
        request.withDropletAgent = true
        #expect(try Self.body(request).contains(#""with_droplet_agent":true"#))
        try request.validate()
    }

    @Test func aKeyIsParsedFromTextAsAnIdOrAFingerprint() throws {
        #expect(try SSHKeyReference(parsing: "512189") == .id(512_189))
        #expect(try SSHKeyReference(parsing: " \(Self.fingerprint)\n") == .fingerprint(Self.fingerprint))
        #expect(SSHKeyReference.id(7).description == "7")
        #expect(throws: DigitalOceanError.self) { try SSHKeyReference(parsing: "0") }
        #expect(throws: DigitalOceanError.self) { try SSHKeyReference(parsing: "99999999999999999999999") }
        #expect(throws: DigitalOceanError.self) { try SSHKeyReference(parsing: "") }
    }

    /// The message a bad value gives, or nil when it passes.
    static func refusal(_ check: () throws -> Void) -> String? {
        do {
            try check()
            return nil
        } catch {
            let failure = error as? DigitalOceanError
            #expect(failure?.code == .validation)
            return failure?.message ?? "\(error)"
        }
    }

    @Test func badKeysAreRefusedWithAnOperatorsMessage() {
        #expect(Self.refusal { try DropletCreateRequest.validateSSHKey(.fingerprint(Self.fingerprint)) } == nil)
        #expect(Self.refusal { try DropletCreateRequest.validateSSHKey(.id(1)) } == nil)
        #expect(
            Self.refusal { try DropletCreateRequest.validateSSHKey(.id(0)) }
                == "ssh key id 0 is not valid; ids start at 1"
        )
        let sha = Self.refusal {
            try DropletCreateRequest.validateSSHKey(.fingerprint("SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"))
        }
        #expect(sha?.contains("neither a key id nor an MD5 fingerprint as DigitalOcean shows them") == true)
        #expect(sha?.contains("ssh-keygen -l -E md5") == true)
        for bad in [
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45",  // 15 pairs
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa:00",  // 17
            "3B:16:BF:E4:8B:00:8B:B8:59:8C:A9:D3:F0:19:45:FA",  // not as DigitalOcean shows them
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fg",
            "3b-16-bf-e4-8b-00-8b-b8-59-8c-a9-d3-f0-19-45-fa",
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:4:5fa",
        ] {
            #expect(Self.refusal { try DropletCreateRequest.validateSSHKey(.fingerprint(bad)) } != nil, "\(bad)")
        }
        var request = DropletCreateRequest(name: "web-1", sshKeys: [.fingerprint("aa:bb")])
        #expect(Self.refusal { try request.validate() }?.contains(#""aa:bb""#) == true)
        request.sshKeys = Array(repeating: .id(1), count: DropletCreateRequest.maximumSSHKeys + 1)
        #expect(Self.refusal { try request.validate() }?.contains("51 ssh keys asked for; at most 50") == true)
    }

    @Test func aVPCMustBeAUUID() {
        #expect(
            Self.refusal { try DropletCreateRequest.validateVPCUUID("760e09ef-dc84-11e8-981e-3cfdfeaae000") } == nil
        )
        #expect(
            Self.refusal { try DropletCreateRequest.validateVPCUUID("760E09EF-DC84-11E8-981E-3CFDFEAAE000") } == nil
        )
        #expect(
            Self.refusal { try DropletCreateRequest.validateVPCUUID("default") }
                == #"vpc_uuid "default" is not a UUID (such as 760e09ef-dc84-11e8-981e-3cfdfeaae000)"#
        )
        for bad in [
            "", "760e09ef-dc84-11e8-981e-3cfdfeaae00", "760e09ef-dc84-11e8-981e3cfdfeaae0000",
            "760e09ef-dc84-11e8-981e-3cfdfeaae00g", " 760e09ef-dc84-11e8-981e-3cfdfeaae000",
        ] {
            #expect(Self.refusal { try DropletCreateRequest.validateVPCUUID(bad) } != nil, "\(bad)")
        }
        let request = DropletCreateRequest(name: "web-1", vpcUUID: "nope")
        #expect(Self.refusal { try request.validate() }?.hasPrefix(#"vpc_uuid "nope""#) == true)
    }

    @Test func tooManyTagsAreRefused() {
        let fifty = (1...50).map { "t\($0)" }
        #expect(Self.refusal { try DropletCreateRequest.validateTags(fifty) } == nil)
        #expect(
            Self.refusal { try DropletCreateRequest.validateTags(fifty + ["t51"]) }
                == "51 tags asked for; at most 50 are allowed on a droplet (a limit of this daemon's)"
        )
        #expect(Self.refusal { try DropletCreateRequest.validateTags(["ok", "not ok"]) }?.contains("not ok") == true)
        let request = DropletCreateRequest(name: "web-1", tags: fifty + ["t51"])
        #expect(Self.refusal { try request.validate() } != nil)
    }

    @Test func descriptionAndMirrorShowTheNewFieldsButNeverTheUserData() {
        let request = DropletCreateRequest(
            name: "web-1",
            tags: ["citrus-host"],
            userData: "#!/bin/sh\nKEY=very-secret-value\n",
            sshKeys: [.id(512_189), .fingerprint(Self.fingerprint)],
            vpcUUID: "760e09ef-dc84-11e8-981e-3cfdfeaae000",
            withDropletAgent: false
        )
        let text = request.description
        #expect(text.contains("ssh keys [\"512189\", \"\(Self.fingerprint)\"]"))
        #expect(text.contains("vpc 760e09ef-dc84-11e8-981e-3cfdfeaae000"))
        #expect(text.contains("droplet agent off"))
        #expect(!text.contains("very-secret-value"))
        var dumped = ""
        dump(request, to: &dumped)
        #expect(dumped.contains("760e09ef-dc84-11e8-981e-3cfdfeaae000") && dumped.contains("512189"))
        #expect(dumped.contains("withDropletAgent"))
        #expect(!dumped.contains("very-secret-value"))
    }

    @Test func theNewActionsEncodeToTheSpecsBodies() throws {
        #expect(try Self.body(DropletActionRequest.enableBackups) == #"{"type":"enable_backups"}"#)
        #expect(try Self.body(DropletActionRequest.disableBackups) == #"{"type":"disable_backups"}"#)
        #expect(try Self.body(DropletActionRequest.shutdown) == #"{"type":"shutdown"}"#)
        #expect(DropletActionRequest.shutdown.description == "shutdown")
        try DropletActionRequest.enableBackups.validate()
    }

    @Test func tagAndProjectBodiesAreTheSpecs() throws {
        #expect(
            try Self.body(TagResourcesBody(dropletIDs: [5_000_000_001, 42]))
                == #"{"resources":[{"resource_id":"5000000001","resource_type":"droplet"},{"resource_id":"42","resource_type":"droplet"}]}"#
        )
        #expect(try Self.body(TagCreateBody(name: "env:prod")) == #"{"name":"env:prod"}"#)
        #expect(
            try Self.body(ProjectAssignmentBody(resources: [DigitalOceanClient.dropletURN(5_000_000_001)]))
                == #"{"resources":["do:droplet:5000000001"]}"#
        )
    }

    @Test func projectIdsAndResourceNamesAreChecked() {
        #expect(
            Self.refusal { try DigitalOceanClient.validateProjectID("4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679") } == nil
        )
        #expect(Self.refusal { try DigitalOceanClient.validateProjectID("my-project") }?.contains("not a UUID") == true)
        #expect(Self.refusal { try DigitalOceanClient.validateURN("do:droplet:13457723") } == nil)
        #expect(Self.refusal { try DigitalOceanClient.validateURN("do:domain:example.com") } == nil)
        for bad in ["droplet:1", "do:server:1", "do:droplet:", "do:droplet:abc", "do:droplet:0", "13457723"] {
            #expect(Self.refusal { try DigitalOceanClient.validateURN(bad) } != nil, "\(bad)")
        }
    }

    @Test func featuresAreReadIntoASet() throws {
        let body = """
            {"id":5000000001,"name":"n","status":"active","created_at":"2020-07-21T18:37:44Z",
            "features":["private_networking","backups","metadata","droplet_agent"],"region":{"slug":"sfo3"},
            "size_slug":"s-1vcpu-1gb","image":{"id":1,"slug":"ubuntu-22-04-x64"},
            "vpc_uuid":"5a4981aa-9653-4bd1-bef5-d6bff52042e4"}
            """
        let droplet = try DigitalOceanJSON.decoder().decode(Droplet.self, from: Data(body.utf8))
        #expect(droplet.features == [.privateNetworking, .backups, .dropletAgent])
        #expect(droplet.features.contains(.backups) && !droplet.features.contains(.ipv6))
        #expect(droplet.features.description == "backups,droplet_agent,private_networking")
        #expect(droplet.vpcUUID == "5a4981aa-9653-4bd1-bef5-d6bff52042e4")
        #expect(MemoryLayout<DropletFeatures>.size == 1)
    }

    @Test func theTagEndpointsOtherErrorShapeIsRead() {
        // resources/tags/responses/tags_bad_request.yml: {error, messages, root_causes}, no `message`.
        let body =
            #"{"error":"Error validating resource tag: \"tag-name \\\"no spaces\\\" contains invalid characters\"","messages":null,"root_causes":[]}"#
        let error = DigitalOceanError.answered(
            status: 400,
            headers: [],
            body: Data(body.utf8),
            operation: "POST /v2/tags",
            kind: .ensure
        )
        #expect(error.code == .validation)
        #expect(error.message.contains("Error validating resource tag"), "\(error.message)")
    }

    @Test func anUpdateWithoutAnAnswerOrWithA5xxIsAnUnknownOutcome() {
        let lost = DigitalOceanError.unanswered(
            summary: "the connection closed",
            underlying: "x",
            sentMaybe: true,
            operation: "POST /v2/tags/x/resources",
            kind: .update,
            baseURL: "http://127.0.0.1"
        )
        #expect(lost.code == .outcomeUnknown)
        let neverSent = DigitalOceanError.unanswered(
            summary: "refused",
            underlying: "x",
            sentMaybe: false,
            operation: "POST /v2/tags/x/resources",
            kind: .update,
            baseURL: "http://127.0.0.1"
        )
        #expect(neverSent.code == .transport)
        let serverError = DigitalOceanError.answered(
            status: 502,
            headers: [],
            body: Data(),
            operation: "POST /v2/projects/p/resources",
            kind: .update
        )
        #expect(serverError.code == .outcomeUnknown)
        #expect(!RequestKind.update.resendable && RequestKind.ensure.resendable)
    }
}
