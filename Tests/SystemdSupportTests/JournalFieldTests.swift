import Foundation
import Logging
import Testing

@testable import SystemdSupport

@Suite("Journal field names and priorities")
struct JournalFieldTests {
    @Test(arguments: [
        ("server_id", "SERVER_ID"),
        ("SERVER_ID", "SERVER_ID"),
        ("do.request-id", "DO_REQUEST_ID"),
        ("_pid", "PID"),
        ("__cursor", "CURSOR"),
        ("2fa", "F_2FA"),
        ("_9lives", "F_9LIVES"),
        ("état", "TAT"),
        ("caf\u{e9}", "CAF_"),
        ("a b", "A_B"),
    ])
    func sanitisesMetadataKeys(key: String, expected: String) {
        #expect(JournalLogHandler.fieldName(forMetadataKey: key) == expected)
    }

    @Test func leadingNonAlphanumericsThatLeaveNothingAreDropped() {
        #expect(JournalLogHandler.fieldName(forMetadataKey: "") == nil)
        #expect(JournalLogHandler.fieldName(forMetadataKey: "___") == nil)
    }

    @Test func fieldNamesAreValidForTheJournal() throws {
        let keys = ["x" + String(repeating: "y", count: 100), "émoji😀key", "9", "a-b.c/d", "_"]
        for key in keys {
            guard let name = JournalLogHandler.fieldName(forMetadataKey: key) else { continue }
            #expect(name.count <= 64)
            #expect(name.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            let first = try #require(name.first)
            #expect(first != "_" && !first.isNumber, "\(key) → \(name)")
        }
        #expect(JournalLogHandler.fieldName(forMetadataKey: String(repeating: "a", count: 100))?.count == 64)
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func mapsLevelsToSyslogPriorities(level: Logger.Level, priority: Int) {
        #expect(JournalLogHandler.priority(for: level) == priority)
    }

    @Test func auditMetadataBecomesExactlyTheDocumentedFields() {
        var handler = JournalLogHandler(label: "citrus.audit", identifier: "citrus-reconciler", metadataProvider: nil)
        handler[metadataKey: "component"] = "loop"
        let event = LogEvent(
            level: .notice,
            message: "server web-1 went from provisioning to active",
            metadata: [
                "MESSAGE_ID": "f4e0b00a992e45f7b917baf4526d904d",
                "SERVER_ID": "0d3c1c2e-57c4-4ab1-9f55-0d1f4b4c3a10",
                "SERVER_NAME": "web-1",
                "DROPLET_ID": "4242",
                "FROM_STATUS": "provisioning",
                "TO_STATUS": "active",
                "DO_REQUEST_ID": "7c1e",
            ],
            source: "Reconciler",
            file: "Reconciler/Loop.swift",
            function: "act()",
            line: 42
        )
        let fields = handler.journalFields(for: event)
        let byName = Dictionary(fields.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(fields.count == byName.count, "no field is sent twice")
        #expect(byName["MESSAGE"] == "server web-1 went from provisioning to active")
        #expect(byName["PRIORITY"] == "5")
        #expect(byName["SYSLOG_IDENTIFIER"] == "citrus-reconciler")
        #expect(byName["LOGGER"] == "citrus.audit")
        #expect(byName["CODE_FILE"] == "Reconciler/Loop.swift")
        #expect(byName["CODE_LINE"] == "42")
        #expect(byName["CODE_FUNC"] == "act()")
        #expect(byName["COMPONENT"] == "loop")
        for (name, value) in event.metadata! {
            #expect(byName[name] == "\(value)", "\(name)")
        }
    }

    @Test func metadataCannotOverrideTheHandlersOwnFields() {
        let handler = JournalLogHandler(label: "l", identifier: "citrus-reconciler", metadataProvider: nil)
        let event = LogEvent(
            level: .info,
            message: "real",
            metadata: ["message": "fake", "priority": "0"],
            source: "s",
            file: "f",
            function: "fn",
            line: 1
        )
        let fields = handler.journalFields(for: event)
        #expect(fields.filter { $0.name == "MESSAGE" }.map(\.value) == ["real"])
        #expect(fields.filter { $0.name == "PRIORITY" }.map(\.value) == ["6"])
        #expect(fields.contains { $0.name == "META_MESSAGE" && $0.value == "fake" })
        #expect(fields.contains { $0.name == "META_PRIORITY" && $0.value == "0" })
    }

    @Test func eventMetadataWinsOverHandlerAndProviderMetadata() {
        let provider = Logger.MetadataProvider { ["server_id": "from-provider", "trace": "t1"] }
        var handler = JournalLogHandler(label: "l", identifier: "i", metadataProvider: provider)
        handler[metadataKey: "server_id"] = "from-handler"
        let event = LogEvent(
            level: .info,
            message: "m",
            metadata: ["server_id": "from-event"],
            source: "s",
            file: "f",
            function: "fn",
            line: 1
        )
        let fields = handler.journalFields(for: event)
        #expect(fields.filter { $0.name == "SERVER_ID" }.map(\.value) == ["from-event"])
        #expect(fields.contains { $0.name == "TRACE" && $0.value == "t1" })
    }
}
