import CitrusTestKit
import Logging
import SystemdSupport
import Testing

@Suite("A log level that changes while the daemon runs (reload)")
struct LogLevelSwitchTests {
    @Test("every logger follows the switch, copies made before a change too; a logger that set its own level keeps it")
    func followsTheSwitch() {
        let recorder = RecordingLogHandler.Recorder()
        let levels = LogLevelSwitch(.info)
        func handler(_ label: String) -> SwitchedLogHandler<RecordingLogHandler> {
            // The base's own level is ignored: the switch decides.
            SwitchedLogHandler(
                RecordingLogHandler(label: label, recorder: recorder, logLevel: .critical),
                levelSwitch: levels
            )
        }
        let logger = Logger(label: "daemon", factory: handler)
        let copy = logger
        var pinned = Logger(label: "transport", factory: handler)
        pinned.logLevel = max(pinned.logLevel, .debug)

        logger.debug("hidden at info")
        logger.info("shown at info")
        levels.level = .debug
        copy.debug("shown after the switch to debug")
        levels.level = .trace
        logger.trace("shown at trace")
        // Pinned at start (info, as the DigitalOcean client's transport logger is): trace is not let through.
        pinned.trace("hidden: the pinned logger stays at info")
        pinned.info("info for the pinned logger")
        levels.level = .error
        logger.warning("hidden at error")
        copy.error("shown at error")

        #expect(
            recorder.entries.map(\.message) == [
                "shown at info", "shown after the switch to debug", "shown at trace", "info for the pinned logger",
                "shown at error",
            ]
        )
        #expect(logger.logLevel == .error && copy.logLevel == .error && pinned.logLevel == .info)
    }

    @Test("metadata goes through to the wrapped handler")
    func metadata() {
        let recorder = RecordingLogHandler.Recorder()
        var logger = Logger(label: "daemon") {
            SwitchedLogHandler(RecordingLogHandler(label: $0, recorder: recorder), levelSwitch: LogLevelSwitch(.info))
        }
        logger[metadataKey: "replica"] = "a"
        logger.notice("hello", metadata: ["SERVER_ID": "1"])
        #expect(recorder.entries.first?.metadata == ["replica": "a", "SERVER_ID": "1"])
        #expect(logger[metadataKey: "replica"] == "a")
    }
}
