import ArgumentParser
import CommandLineSupport
import DigitalOcean
import DigitalOceanHTTP
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import DigitalOceanAdapter
import Logging
import OperatorReports
import Postgres
import PostgresAdapter
import ReconcileCore
import Reconciler

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what one pass would do (create, adopt, destroy, status changes, orphans); change nothing.",
        discussion:
            "Reads the servers table and lists droplets at DigitalOcean (GET requests only). Writes nothing to Postgres and sends no create or delete."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var digitalOcean: DigitalOceanOptions
    @OptionGroup var loop: LoopOptions
    @OptionGroup var agents: AgentOptions
    @OptionGroup var droplets: DropletFlags

    @Option(help: ArgumentHelp("text (the default) or json.", valueName: "format"))
    var output: OutputFormat = .text

    @Flag(help: "Exit 0 when there is nothing to do, 2 when changes are pending, 1 on error (as terraform plan does).")
    var detailedExitcode = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let url: URL
        let token: DigitalOceanToken
        let configuration: ReconcilerConfiguration
        do {
            url = try digitalOcean.baseURL(environment: environment)
            token = try digitalOcean.token(environment: environment)
            var loopConfiguration = try loop.configuration(environment: environment)
            loopConfiguration.enrollment = try agents.enrollment(environment: environment)
            try droplets.apply(to: &loopConfiguration, environment: environment)
            configuration = loopConfiguration
        } catch {
            throw error.report(command: "plan")
        }
        let logger = Logger(label: "citrus-reconciler.plan", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = try await database.connect(command: "plan", environment: environment)
        let client = DigitalOceanClient(configuration: .init(token: token, baseURL: url.absoluteString), logger: logger)
        let cloud = DigitalOceanFleet(client: client)
        let reconciler = FleetReconciler(
            repository: PostgresServerRepository(connection: connection),
            cloud: cloud,
            configuration: configuration,
            logger: logger,
            mayAct: { false }
        )
        var pending = false
        do {
            let (rows, _, plan) = try await reconciler.preview()
            var problems: [UUID: String] = [:]
            for case let .create(order, _, _) in plan.actions {
                problems[order.rowID] = order.specification.problem ?? cloud.problem(with: order)
            }
            let bootstrap = configuration.enrollment != nil
            // Said apart from the plan, so that the JSON stays one document.
            if agents.usesPlaceholderTemplate(environment: environment) {
                StandardStreams.writeError(
                    "citrus-reconciler plan: warning: \(AgentOptions.placeholderTemplateWarning)\n"
                )
            }
            switch output {
            case .text: print(Reports.plan(plan, rows: rows, problems: problems, agentBootstrap: bootstrap))
            case .json: print(Reports.planJSON(plan, rows: rows, problems: problems, agentBootstrap: bootstrap))
            }
            pending = Reports.hasChanges(plan)
        } catch {
            try? await client.shutdown()
            await connection.close()
            StandardStreams.writeError("citrus-reconciler plan: \(error)\n")
            throw ExitCode.failure
        }
        try? await client.shutdown()
        await connection.close()
        if detailedExitcode && pending { throw ExitCode(2) }
    }
}
