import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import OperatorReports
import Postgres
import ReconcileCore
import ServerStore

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one server's story from server_events, newest last.",
        discussion: """
            SERVER is the row's id, the first characters of it as `status` shows them (at least 4), or \
            its name when only one row has that name. Exit 1 when it matches no row or several.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The server: id, id prefix or name.", valueName: "server"))
    var server: String

    @Option(help: ArgumentHelp("text (the default) or json.", valueName: "format"))
    var output: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() async throws {
        let connection = try await database.connect(command: "events", environment: ProcessInfo.processInfo.environment)
        let store = ServerStore(connection: connection)
        let outcome: Result<String, Failure>
        do {
            let matches = Self.matching(server, in: try await store.fetchServers())
            if matches.count == 1 {
                let row = matches[0]
                let events = try await store.fetchEvents(serverID: row.id)
                outcome = .success(output == .json ? Reports.eventsJSON(events) : Reports.events(events, of: row))
            } else {
                outcome = .failure(.unmatched(server, matches))
            }
        } catch {
            outcome = .failure(Failure("\(error)"))
        }
        await connection.close()
        try Failure.finish(outcome, command: "events")
    }

    struct Failure: Error {
        var message: String
        init(_ message: String) { self.message = message }

        /// Prints what a one-server command came to: its text, or its failure on stderr (exit 1).
        static func finish(_ outcome: Result<String, Failure>, command: String) throws {
            switch outcome {
            case .success(let text): print(text)
            case .failure(let failure):
                StandardStreams.writeError("citrus-reconciler \(command): \(failure.message)\n")
                throw ExitCode.failure
            }
        }

        /// SERVER matched no row, or several (listed, so the operator can give the id).
        static func unmatched(_ server: String, _ matches: [ServerRecord]) -> Failure {
            guard !matches.isEmpty else {
                return Failure("no server matches \"\(Reports.escaped(server))\" (by id, id prefix or name)")
            }
            let list = matches.map {
                "  \($0.id.uuidString.lowercased())  \(Reports.escaped($0.name))  \($0.state.status.rawValue)"
            }
            return Failure(
                "\"\(Reports.escaped(server))\" matches \(matches.count) servers; give the id:\n"
                    + list.joined(separator: "\n")
            )
        }
    }

    /// The full id first, then an id prefix (at least 4 characters), then the name.
    static func matching(_ query: String, in rows: [ServerRecord]) -> [ServerRecord] {
        let lowered = query.lowercased()
        if let id = UUID(uuidString: query) { return rows.filter { $0.id == id } }
        if lowered.count >= 4, lowered.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
            let byPrefix = rows.filter { $0.id.uuidString.lowercased().hasPrefix(lowered) }
            if !byPrefix.isEmpty { return byPrefix }
        }
        return rows.filter { $0.name == query }
    }
}
