import TerminalText

/// A single-droplet `POST /v2/droplets` body (`models/droplet_single_create.yml` + `droplet_create.yml`).
///
/// Call ``validate()`` to reject a bad row without sending anything; the client calls it too.
public struct DropletCreateRequest: Sendable, Equatable, Encodable {
    public var name: String
    public var region: String
    public var size: String
    public var image: String
    public var tags: [String]
    public var ipv6: Bool
    public var monitoring: Bool
    public var backups: Bool
    /// Plain text, at most 64 KiB. It may carry secrets (an agent's key): it is sent, and never
    /// printed, logged or echoed; see `secrets`.
    public var userData: String?
    /// Texts inside `userData` that must never leave the request (not encoded): any error the
    /// client throws for this request has them replaced by `[redacted]`, whatever DigitalOcean's
    /// answer echoed.
    public var secrets: [String] = []

    /// Defaults are the platform's standard droplet (design.md, "The droplet the daemon asks for").
    public init(
        name: String,
        region: String = "sfo3",
        size: String = "s-1vcpu-512mb-10gb",
        image: String = "ubuntu-22-04-x64",
        tags: [String] = [],
        ipv6: Bool = true,
        monitoring: Bool = true,
        backups: Bool = false,
        userData: String? = nil
    ) {
        self.name = name
        self.region = region
        self.size = size
        self.image = image
        self.tags = tags
        self.ipv6 = ipv6
        self.monitoring = monitoring
        self.backups = backups
        self.userData = userData
    }

    enum CodingKeys: String, CodingKey {
        case name, region, size, image, tags, ipv6, monitoring, backups
        case userData = "user_data"
    }

    /// `error` with every secret of this request replaced by `[redacted]`.
    public func redacting(_ error: DigitalOceanError) -> DigitalOceanError {
        guard !secrets.isEmpty else { return error }
        var error = error
        error.message = redacting(error.message)
        error.underlying = error.underlying.map(redacting)
        return error
    }

    public func redacting(_ text: String) -> String {
        secrets.reduce(text) { text, secret in
            secret.isEmpty ? text : text.replacingAll(secret, with: "[redacted]")
        }
    }

    public static let maximumNameLength = 255
    public static let maximumTagLength = 255
    public static let maximumUserDataBytes = 64 * 1024

    /// Checks the rules DigitalOcean enforces, so a bad row fails locally with an operator's message.
    public func validate() throws(DigitalOceanError) {
        try Self.validateName(name)
        try Self.validateSize(size)
        for (field, value) in [("region", region), ("image", image)] where value.isEmpty {
            throw .localValidation("\(field) must not be empty")
        }
        for tag in tags { try Self.validateTag(tag) }
        if let userData, userData.utf8.count > Self.maximumUserDataBytes {
            throw .localValidation(
                "user_data is \(userData.utf8.count) bytes; DigitalOcean accepts at most \(Self.maximumUserDataBytes) bytes (64 KiB)"
            )
        }
    }

    /// The spec's pattern `^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`, at most 255 characters: the
    /// rules for a create's name and a rename's alike.
    public static func validateName(_ name: String) throws(DigitalOceanError) {
        try requireCharacters(name, "droplet name", maximum: maximumNameLength, "'.' and '-'") {
            $0 == "." || $0 == "-"
        }
        guard let last = name.unicodeScalars.last, isASCIIAlphanumeric(last) else {
            throw .localValidation("droplet name \(quoted(name)) must end with a letter or a digit")
        }
    }

    /// Tag names: `^[a-zA-Z0-9_\-\:]+$`, at most 255 characters (`resources/tags/models/tags.yml`).
    public static func validateTag(_ tag: String) throws(DigitalOceanError) {
        try requireCharacters(tag, "tag", maximum: maximumTagLength, "'_', '-' and ':'") {
            $0 == "_" || $0 == "-" || $0 == ":"
        }
    }

    /// The longest size slug accepted; DigitalOcean's are under 30 characters.
    public static let maximumSizeLength = 64

    /// A size slug (`s-1vcpu-1gb`, `so1_5-2vcpu-16gb`): the spec gives no pattern, so this only
    /// refuses what no slug holds (nothing, spaces, slashes, controls, anything past 64 characters).
    public static func validateSize(_ size: String) throws(DigitalOceanError) {
        try requireCharacters(size, "size", maximum: maximumSizeLength, "'-', '_' and '.'") {
            $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// `text` is 1 to `maximum` characters, each an ASCII letter or digit or one that `also` allows
    /// (`alsoText` names them); the error names the first one that is not.
    private static func requireCharacters(
        _ text: String,
        _ what: String,
        maximum: Int,
        _ alsoText: String,
        also: (Unicode.Scalar) -> Bool
    ) throws(DigitalOceanError) {
        let count = text.unicodeScalars.count
        guard count > 0 else { throw .localValidation("\(what) must not be empty") }
        guard count <= maximum else {
            throw .localValidation(
                "\(what) \(quoted(String(text.prefix(40))))… is \(count) characters long; at most \(maximum) are allowed"
            )
        }
        for (offset, scalar) in text.unicodeScalars.enumerated() where !(isASCIIAlphanumeric(scalar) || also(scalar)) {
            throw .localValidation(
                "\(what) \(quoted(text)) has \(quoted(String(scalar))) at position \(offset + 1); only letters, digits, \(alsoText) are allowed"
            )
        }
    }

    private static func isASCIIAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
    }

    private static func quoted(_ text: String) -> String {
        "\""
            + text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : $0.escaped(asASCII: true) }
            .joined() + "\""
    }
}

/// What `POST /v2/droplets` returned: the droplet (status `new`, no addresses yet), its create
/// actions, and the request id to quote to DigitalOcean support.
public struct CreatedDroplet: Sendable, Equatable {
    public var droplet: Droplet
    public var actions: [ActionLink]
    public var requestID: String?
}

/// The result of `DELETE /v2/droplets/{id}`. Both mean the droplet is gone or going.
/// Each carries DigitalOcean's request id (`x-request-id`), to quote to its support.
public enum DeleteOutcome: Sendable, Equatable {
    /// 204: DigitalOcean accepted the delete.
    case deleted(requestID: String?)
    /// 404: there was no such droplet (already deleted, or never existed).
    case alreadyGone(requestID: String?)

    public var requestID: String? {
        switch self {
        case .deleted(let id), .alreadyGone(let id): id
        }
    }
}

extension DropletCreateRequest: CustomStringConvertible, CustomReflectable {
    /// Everything but the user data, which shows as its size: a request printed or dumped into a
    /// log never carries the secrets inside it.
    public var description: String {
        "droplet \(name) in \(region) (\(size), \(image)), tags \(tags)"
            + (userData.map { ", user_data \($0.utf8.count) bytes" } ?? "")
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "name": name, "region": region, "size": size, "image": image, "tags": tags, "ipv6": ipv6,
                "monitoring": monitoring, "backups": backups, "userDataBytes": userData?.utf8.count as Any,
            ],
            displayStyle: .struct
        )
    }
}
