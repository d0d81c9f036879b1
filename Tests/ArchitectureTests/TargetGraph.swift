import Foundation

/// What a target of this package depends on, as `swift package dump-package` describes it: other
/// targets of the package, and products of other packages (which end the walk: their own
/// dependencies are not in this manifest).
struct TargetGraph {
    enum Node: Hashable, CustomStringConvertible {
        case target(String)
        case product(name: String, package: String)

        var description: String {
            switch self {
            case .target(let name): name
            case .product(let name, let package): "\(name) (\(package))"
            }
        }
    }

    /// Each target's direct dependencies, in the manifest's order.
    var dependencies: [String: [Node]]

    /// Reads the graph from `dump-package`'s JSON.
    init(dumpedPackage json: Data) throws {
        struct Manifest: Decodable {
            struct Target: Decodable {
                var name: String
                var dependencies: [Dependency]
            }
            /// `{"byName": [name, condition]}`, `{"target": [name, condition]}` or
            /// `{"product": [name, package, moduleAliases, condition]}`.
            struct Dependency: Decodable {
                var byName: [String?]?
                var target: [String?]?
                var product: [String?]?
            }
            var targets: [Target]
        }
        let manifest = try JSONDecoder().decode(Manifest.self, from: json)
        dependencies = [:]
        for target in manifest.targets {
            dependencies[target.name] = target.dependencies.compactMap { dependency in
                if let name = (dependency.byName ?? dependency.target)?.first ?? nil { return .target(name) }
                if let product = dependency.product, product.count >= 2, let name = product[0],
                    let package = product[1]
                {
                    return .product(name: name, package: package)
                }
                return nil
            }
        }
    }

    init(dependencies: [String: [Node]]) {
        self.dependencies = dependencies
    }

    /// For each node `target` reaches (directly or through other targets) that `isForbidden`, the
    /// shortest chain of dependencies that leads there, starting with `target`.
    func forbiddenPaths(from target: String, isForbidden: (Node) -> Bool) -> [[Node]] {
        let start = Node.target(target)
        var cameFrom: [Node: Node] = [:]
        var seen: Set<Node> = [start]
        var queue = [start]
        var found: [Node] = []
        while !queue.isEmpty {
            let node = queue.removeFirst()
            guard case .target(let name) = node else { continue }
            for next in dependencies[name] ?? [] where !seen.contains(next) {
                seen.insert(next)
                cameFrom[next] = node
                if isForbidden(next) {
                    // Reached: what lies beyond it is its own business.
                    found.append(next)
                } else {
                    queue.append(next)
                }
            }
        }
        return found.map { end in
            var path = [end]
            while let previous = cameFrom[path[0]] { path.insert(previous, at: 0) }
            return path
        }
    }
}
