import EngineHubSimulator

@main
struct CitrusEngineSim {
    static func main() {}
}
