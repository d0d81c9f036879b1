import Foundation
import Logging
import Testing

@testable import SystemdSupport

@Suite("Choosing the journal or text")
struct LogSelectionTests {
    @Test func journalStreamMustNameExactlyThisDeviceAndInode() {
        #expect(JournalStream.matches("8:12345", device: 8, inode: 12345))
        #expect(!JournalStream.matches("8:12346", device: 8, inode: 12345))
        #expect(!JournalStream.matches("9:12345", device: 8, inode: 12345))
        #expect(!JournalStream.matches(nil, device: 8, inode: 12345))
        #expect(!JournalStream.matches("", device: 8, inode: 12345))
        #expect(!JournalStream.matches("8:12345:1", device: 8, inode: 12345))
        #expect(!JournalStream.matches("8-12345", device: 8, inode: 12345))
        #expect(!JournalStream.matches(" 8:12345", device: 8, inode: 12345))
    }

    /// The selection reads this process's real stderr with fstat(2).
    @Test func autoPicksTheJournalOnlyWhenStderrIsTheNamedStream() throws {
        var info = stat()
        try #require(fstat(STDERR_FILENO, &info) == 0)
        let ours = "\(info.st_dev):\(info.st_ino)"
        let other = "\(info.st_dev):\(UInt64(info.st_ino) &+ 1)"

        #expect(JournalStream.stderrIsJournal(environment: ["JOURNAL_STREAM": ours]))
        #expect(!JournalStream.stderrIsJournal(environment: ["JOURNAL_STREAM": other]))
        #expect(!JournalStream.stderrIsJournal(environment: [:]))

        #expect(LogFormat.auto.resolved(environment: ["JOURNAL_STREAM": ours]) == .journal)
        #expect(LogFormat.auto.resolved(environment: ["JOURNAL_STREAM": other]) == .text)
        #expect(LogFormat.auto.resolved(environment: [:]) == .text)
        #expect(LogFormat.journal.resolved(environment: [:]) == .journal)
        #expect(LogFormat.text.resolved(environment: ["JOURNAL_STREAM": ours]) == .text)
    }

    @Test func logFormatParsesFromTheFlagsValues() {
        #expect(LogFormat(rawValue: "auto") == .auto)
        #expect(LogFormat(rawValue: "journal") == .journal)
        #expect(LogFormat(rawValue: "text") == .text)
        #expect(LogFormat(rawValue: "json") == nil)
    }
}

@Suite("Text log lines")
struct TextLogHandlerTests {
    @Test func lineHasTimestampLevelIdentifierMessageAndSortedMetadata() {
        var handler = TextLogHandler(label: "l", identifier: "citrus-reconciler", metadataProvider: nil)
        handler[metadataKey: "server_id"] = "abc"
        let event = LogEvent(
            level: .warning,
            message: "create failed\nretrying",
            metadata: ["status": "503", "reason": "service unavailable", "empty": ""],
            source: "s",
            file: "f",
            function: "fn",
            line: 1
        )
        let line = handler.format(event, at: Date(timeIntervalSince1970: 1_747_749_787.125))
        #expect(
            line
                == #"2025-05-20T14:03:07.125Z warning citrus-reconciler: create failed\nretrying empty="" reason="service unavailable" server_id=abc status=503"#
        )
        #expect(!line.contains("\n"))
    }

    @Test func writesOneLinePerEntryToItsDescriptor() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let logger = Logger(label: "t") {
            TextLogHandler(label: $0, identifier: "x", metadataProvider: nil, fileDescriptor: fds[1])
        }
        logger.info("hello", metadata: ["k": "v"])
        logger.debug("below the level")
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &buffer, buffer.count)
        let text = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
        #expect(text.hasSuffix(" info x: hello k=v\n"))
        #expect(text.filter { $0 == "\n" }.count == 1)
    }
}

@Suite("sd_notify outside systemd")
struct NotifierTests {
    @Test(
        .enabled(
            if: ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] == nil,
            "runs only when the tests are not themselves a notify service"
        )
    )
    func everythingIsANoOpWithoutNotifySocket() {
        let notifier = SystemdNotifier()
        #expect(!notifier.isEnabled)
        notifier.ready()
        notifier.status("line one\nline two")
        notifier.extendTimeout(.seconds(30))
        notifier.watchdog()
        notifier.stopping()
    }

    @Test func extendTimeoutIsInMicroseconds() {
        #expect(SystemdNotifier.microseconds(.seconds(30)) == 30_000_000)
        #expect(SystemdNotifier.microseconds(.milliseconds(1500)) == 1_500_000)
        #expect(SystemdNotifier.microseconds(.seconds(-1)) == 0)
        #expect(SystemdNotifier.oneLine("a\nb\r\nc") == "a b c")
    }
}
