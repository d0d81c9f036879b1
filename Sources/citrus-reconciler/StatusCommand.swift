import ArgumentParser
import Foundation
import Postgres
import Reconciler
import ServerStore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the servers table as an operator reads it.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let connection = try await database.connect(command: "status", environment: ProcessInfo.processInfo.environment)
        do {
            let store = ServerStore(connection: connection)
            let rows = try await store.fetchServers()
            // Ages on the database's clock, which stamps agents' last_seen_at too.
            print(Reports.status(rows, now: try await store.now()))
        } catch {
            await connection.close()
            FileHandle.standardError.write(Data("citrus-reconciler status: \(error)\n".utf8))
            throw ExitCode.failure
        }
        await connection.close()
    }
}
