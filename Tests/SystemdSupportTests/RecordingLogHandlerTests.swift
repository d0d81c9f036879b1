import CitrusTestKit
import Logging
import Testing

@Suite("In-memory log handler")
struct RecordingLogHandlerTests {
    @Test func recordsLevelMessageAndMergedMetadata() {
        let recorder = RecordingLogHandler.Recorder()
        var logger = Logger(label: "citrus.audit") {
            RecordingLogHandler(label: $0, recorder: recorder, logLevel: .info)
        }
        logger[metadataKey: "replica"] = "a"
        logger.debug("dropped")
        logger.notice("status changed", metadata: ["MESSAGE_ID": "f4e0b00a992e45f7b917baf4526d904d", "replica": "b"])
        let entries = recorder.entries
        #expect(entries.count == 1)
        #expect(entries.first?.level == .notice)
        #expect(entries.first?.message == "status changed")
        #expect(entries.first?.metadata == ["MESSAGE_ID": "f4e0b00a992e45f7b917baf4526d904d", "replica": "b"])
        #expect(entries.first?.label == "citrus.audit")
    }
}
