import ArgumentParser
import Logging
import SystemdSupport

struct LoggingOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where logs go: auto (the journal when stderr is the journal, else text), journal, or text.",
            valueName: "format"
        )
    )
    var logFormat: String = "auto"

    @Option(
        help: ArgumentHelp("Minimum level: trace, debug, info, notice, warning, error, critical.", valueName: "level")
    )
    var logLevel: String = "info"

    func format() throws(ConfigurationError) -> LogFormat {
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ConfigurationError("--log-format \"\(logFormat)\" is not one of auto, journal, text")
        }
        return format
    }

    func level() throws(ConfigurationError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ConfigurationError(
                "--log-level \"\(logLevel)\" is not one of trace, debug, info, notice, warning, error, critical"
            )
        }
        return level
    }
}
