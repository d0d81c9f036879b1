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
            let rows = try await ServerStore(connection: connection).fetchServers()
            print(Reports.status(rows))
        } catch {
            await connection.close()
            FileHandle.standardError.write(Data("citrus-reconciler status: \(error)\n".utf8))
            throw ExitCode.failure
        }
        await connection.close()
    }
}
