import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import OperatorReports
import ServerStore

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a failed server back in line: it is created again exactly once, keeping its identity.",
        discussion: """
            SERVER is the row's id, an id prefix (at least 4 characters) or its name, as for `events`. \
            The row goes back to `creating` with its error, its recorded droplet and its failed \
            placements cleared; its id (so its droplet's identity tag) and its create history stay, so \
            a droplet that still carries its identity is bound again rather than made twice. The \
            running daemon takes it up at once (NOTIFY). A server that is not failed, or whose \
            deletion is requested, is left alone. Exit 1 then, or when SERVER matches no row or \
            several.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The server: id, id prefix or name.", valueName: "server"))
    var server: String

    func run() async throws {
        let connection = try await database.connect(command: "retry", environment: ProcessInfo.processInfo.environment)
        let store = ServerStore(connection: connection)
        let outcome: Result<String, Events.Failure>
        do {
            let matches = Events.matching(server, in: try await store.fetchServers())
            if matches.count != 1 {
                outcome = .failure(Events.Failure.unmatched(server, matches))
            } else {
                let row = matches[0]
                let name = "server \(Reports.escaped(row.name)) (\(row.id.uuidString.lowercased()))"
                switch try await store.retry(id: row.id) {
                case .retried(let reason):
                    outcome = .success(
                        "\(name) is back in line: it was failed (\(Reports.escaped(reason ?? "no reason recorded"))); "
                            + "the daemon binds the droplet that carries its identity, or creates one, once"
                    )
                case .notFailed(let status):
                    outcome = .failure(Events.Failure("\(name) is \(status), not failed: nothing to retry"))
                case .deletionRequested:
                    outcome = .failure(
                        Events.Failure(
                            "\(name) has its deletion requested: clear delete_requested_at first if it should live"
                        )
                    )
                case .noSuchRow:
                    outcome = .failure(Events.Failure("\(name) is gone from the table"))
                }
            }
        } catch {
            outcome = .failure(Events.Failure("\(error)"))
        }
        await connection.close()
        try Events.Failure.finish(outcome, command: "retry")
    }
}
