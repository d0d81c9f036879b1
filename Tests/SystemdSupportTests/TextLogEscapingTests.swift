import Foundation
import Logging
import Testing

@testable import SystemdSupport

/// Row names and DigitalOcean's error texts reach the text log raw: nothing in them may split an
/// entry into two lines or send a terminal an escape sequence.
@Suite("Text log lines escape control characters")
struct TextLogEscapingTests {
    static let hostile = "bell\u{07}red\u{1B}[31m\u{9B}2Jtab\there\rcr\nnl\u{7F}del\u{202E}txt.exe"

    func line(message: String, metadata: Logger.Metadata = [:]) -> String {
        let handler = TextLogHandler(label: "l", identifier: "citrus-reconciler", metadataProvider: nil)
        let event = LogEvent(
            level: .error,
            message: "\(message)",
            metadata: metadata,
            source: "s",
            file: "f",
            function: "fn",
            line: 1
        )
        return handler.format(event, at: Date(timeIntervalSince1970: 0))
    }

    @Test("a message's C0/C1 controls, DEL and bidi overrides become visible escapes; the rest is kept")
    func messageIsEscaped() {
        let text = line(message: "server \(Self.hostile) failed")
        #expect(
            text.hasSuffix(
                #"citrus-reconciler: server bell\u{7}red\u{1b}[31m\u{9b}2Jtab\there\rcr\nnl\u{7f}del\u{202e}txt.exe failed"#
            ),
            "\(text)"
        )
        #expect(
            !text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x202E }
        )
    }

    @Test("a metadata value with controls is quoted and escaped; so is a key")
    func metadataIsEscaped() {
        let text = line(
            message: "m",
            metadata: ["SERVER_NAME": "\(Self.hostile)", "k\u{1B}ey": "plain", "ok": "ünïcode-🍋"]
        )
        #expect(
            text.contains(#" SERVER_NAME="bell\u{7}red\u{1b}[31m\u{9b}2Jtab\there\rcr\nnl\u{7f}del\u{202e}txt.exe""#),
            "\(text)"
        )
        #expect(text.contains(#" k\u{1b}ey=plain"#), "\(text)")
        #expect(text.contains(" ok=ünïcode-🍋"), "printable non-ASCII is left alone: \(text)")
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }

    @Test("an error's description is escaped like a metadata value")
    func errorIsEscaped() {
        struct Failure: Error, CustomStringConvertible { var description: String { "bad\nline\u{1B}]0;title\u{07}" } }
        let handler = TextLogHandler(label: "l", identifier: "x", metadataProvider: nil)
        let event = LogEvent(
            level: .error,
            message: "m",
            error: Failure(),
            metadata: nil,
            source: "s",
            file: "f",
            function: "fn",
            line: 1
        )
        let text = handler.format(event, at: Date(timeIntervalSince1970: 0))
        #expect(text.hasSuffix(#" error="bad\nline\u{1b}]0;title\u{7}""#), "\(text)")
    }

    @Test("a written entry is exactly one line, whatever it carries")
    func oneEntryOneLine() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let logger = Logger(label: "t") {
            TextLogHandler(label: $0, identifier: "x", metadataProvider: nil, fileDescriptor: fds[1])
        }
        logger.warning("one\ntwo\r\nthree\u{0B}four\u{0C}five\u{85}six\u{2028}", metadata: ["v": "a\nb"])
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &buffer, buffer.count)
        let text = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
        #expect(text.filter(\.isNewline).count == 1, "\(text)")
        #expect(text.hasSuffix("\n"))
    }
}
