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
import TerminalText
import Timekeeping

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the servers table as an operator reads it.",
        discussion: "Changes nothing. With --watch, redraws every --interval until interrupted."
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: ArgumentHelp("table (the default), wide (more columns) or json.", valueName: "format"))
    var output: OutputFormat = .table

    @Option(
        name: .customLong("status"),
        help: ArgumentHelp(
            "Only rows in these states (comma-separated or repeated), e.g. --status failed,unreachable.",
            valueName: "state"
        )
    )
    var statuses: [String] = []

    @Flag(help: "Redraw the table every --interval until interrupted (Ctrl-C).")
    var watch = false

    @Option(help: ArgumentHelp("With --watch: how often to redraw (default 2s).", valueName: "duration"))
    var interval: String = "2s"

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table, wide, json
    }

    func run() async throws {
        let wanted: Set<ServerStatus>
        let every: Duration
        do throws(ConfigurationError) {
            wanted = try Self.parse(statuses)
            guard let parsed = DurationText.parse(interval), parsed >= .milliseconds(100), parsed <= .seconds(3600)
            else {
                throw ConfigurationError("--interval \"\(interval)\" must be a duration from 100ms to 1h, such as 2s")
            }
            every = parsed
        } catch {
            throw error.report(command: "status")
        }
        let connection = try await database.connect(command: "status", environment: ProcessInfo.processInfo.environment)
        do {
            repeat {
                let store = ServerStore(connection: connection)
                let rows = try await store.fetchServers().filter { wanted.isEmpty || wanted.contains($0.state.status) }
                // Ages on the database's clock, which stamps agents' last_seen_at too.
                let now = try await store.now()
                let text: String
                switch output {
                case .table, .wide:
                    let table = Reports.status(rows, now: now, wide: output == .wide)
                    text =
                        table + "\n" + (try await Self.fullView(store, now: now))
                        + (try await Self.brake(store, now: now))
                // An array of rows, as before: scripts read it as one, and the full view has no
                // place in it that would not break them.
                case .json: text = Reports.statusJSON(rows)
                }
                // Home the cursor and clear the screen, so each redraw replaces the last.
                let screen = watch && output != .json ? "\u{1b}[H\u{1b}[2J" + text : text
                StandardStreams.writeOutput(screen + "\n")
                if watch { try await Task.sleep(for: every) }
            } while watch
        } catch {
            await connection.close()
            StandardStreams.writeError("citrus-reconciler status: \(error)\n")
            throw ExitCode.failure
        }
        await connection.close()
    }

    /// The line about the last full view of DigitalOcean. A database not yet migrated to
    /// `fleet_view` (a new binary before `migrate`) still gets its table, with a word on why not.
    static func fullView(_ store: ServerStore, now: Date) async throws -> String {
        do {
            let view = Reports.fullView(try await store.fullView(), now: now)
            let said: (line: String, at: Date)?
            do {
                said = try await store.backlog()
            } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.undefinedColumn {
                said = nil  // before migration 11: the leader records no backlog there
            }
            guard let backlog = Reports.backlog(said, now: now) else { return view }
            return view + "\n" + backlog
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.undefinedTable {
            return "DigitalOcean last seen in full: unknown (this database has no fleet_view yet; "
                + "run citrus-reconciler migrate)"
        }
    }

    /// The destroy brake's lines, when it is on or an allowance is in force; nothing otherwise (or
    /// on a database before migration 16).
    static func brake(_ store: ServerStore, now: Date) async throws -> String {
        do {
            let report = try await Destroys.report(store, now: now)
            guard report.contains("BRAKED") || report.contains("allowed past") else { return "" }
            return "\n" + report
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.undefinedTable {
            return ""
        }
    }

    /// `failed,unreachable` and repeated flags; an unknown state is bad configuration.
    static func parse(_ values: [String]) throws(ConfigurationError) -> Set<ServerStatus> {
        var wanted = Set<ServerStatus>()
        for value in values.flatMap({ $0.split(separator: ",") }) {
            let name = value.trimmingSpaces().lowercased()
            guard let status = ServerStatus(rawValue: name) else {
                let known = ServerStatus.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError("--status \"\(name)\" is not a state; use one of \(known)")
            }
            wanted.insert(status)
        }
        return wanted
    }
}
