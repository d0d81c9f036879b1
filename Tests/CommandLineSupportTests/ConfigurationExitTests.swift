import ArgumentParser
import CommandLineSupport
import Logging
import Testing

@Suite("Bad configuration is one line and exit 78")
struct ConfigurationExitTests {
    @Test("the message is one line however many it quoted, after the program's name")
    func oneLine() {
        #expect(
            ConfigurationExit.line("the server said:\nno\r\nsuch role", program: "citrus-reconciler run")
                == "citrus-reconciler run: configuration error: the server said: no such role"
        )
        #expect(ConfigurationExit.code == ExitCode(78))
    }

    @Test("log levels parse from the command line by name", arguments: Logger.Level.allCases)
    func levels(level: Logger.Level) {
        #expect(Logger.Level(argument: level.rawValue) == level)
        #expect(Logger.Level(argument: "loud") == nil)
    }
}
