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
    /// The account's SSH keys to put in root's `authorized_keys` (`ssh_keys`; omitted when empty,
    /// and then DigitalOcean emails a root password instead).
    public var sshKeys: [SSHKeyReference]
    /// The VPC (`vpc_uuid`); nil: the account's default VPC of the region. A VPC belongs to one region.
    public var vpcUUID: String?
    /// `with_droplet_agent`: nil lets DigitalOcean install its console agent where it can, `false`
    /// keeps it off, `true` makes a failed install fail the create.
    public var withDropletAgent: Bool?

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
        userData: String? = nil,
        sshKeys: [SSHKeyReference] = [],
        vpcUUID: String? = nil,
        withDropletAgent: Bool? = nil
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
        self.sshKeys = sshKeys
        self.vpcUUID = vpcUUID
        self.withDropletAgent = withDropletAgent
    }

    enum CodingKeys: String, CodingKey {
        case name, region, size, image, tags, ipv6, monitoring, backups
        case userData = "user_data"
        case sshKeys = "ssh_keys"
        case vpcUUID = "vpc_uuid"
        case withDropletAgent = "with_droplet_agent"
    }

    /// The optional fields are left out when unset, so a request without them is the body it always was.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(region, forKey: .region)
        try c.encode(size, forKey: .size)
        try c.encode(image, forKey: .image)
        try c.encode(tags, forKey: .tags)
        try c.encode(ipv6, forKey: .ipv6)
        try c.encode(monitoring, forKey: .monitoring)
        try c.encode(backups, forKey: .backups)
        try c.encodeIfPresent(userData, forKey: .userData)
        if !sshKeys.isEmpty { try c.encode(sshKeys, forKey: .sshKeys) }
        try c.encodeIfPresent(vpcUUID, forKey: .vpcUUID)
        try c.encodeIfPresent(withDropletAgent, forKey: .withDropletAgent)
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
    /// DigitalOcean documents no limit on a droplet's tags; past this many a row is more likely a
    /// mistake (a list joined wrongly) than a fleet's labels.
    public static let maximumTags = 50
    /// The same for SSH keys: a team's keys are a handful.
    public static let maximumSSHKeys = 50

    /// Checks the rules DigitalOcean enforces, so a bad row fails locally with an operator's message.
    public func validate() throws(DigitalOceanError) {
        try Self.validateName(name)
        try Self.validateSize(size)
        for (field, value) in [("region", region), ("image", image)] where value.isEmpty {
            throw .localValidation("\(field) must not be empty")
        }
        try Self.validateTags(tags)
        try Self.validateSSHKeys(sshKeys)
        if let vpcUUID { try Self.validateVPCUUID(vpcUUID) }
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

    /// Every tag by ``validateTag(_:)``, and at most ``maximumTags`` of them.
    public static func validateTags(_ tags: [String]) throws(DigitalOceanError) {
        guard tags.count <= maximumTags else {
            throw .localValidation(
                "\(tags.count) tags asked for; at most \(maximumTags) are allowed on a droplet (a limit of this daemon's)"
            )
        }
        for tag in tags { try validateTag(tag) }
    }

    /// Every key by ``validateSSHKey(_:)``, and at most ``maximumSSHKeys`` of them.
    public static func validateSSHKeys(_ keys: [SSHKeyReference]) throws(DigitalOceanError) {
        guard keys.count <= maximumSSHKeys else {
            throw .localValidation(
                "\(keys.count) ssh keys asked for; at most \(maximumSSHKeys) are allowed (a limit of this daemon's)"
            )
        }
        for key in keys { try validateSSHKey(key) }
    }

    /// An SSH key as `ssh_keys` names it: an id of at least 1, or an MD5 fingerprint as
    /// DigitalOcean shows it (`3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa`, lower-case).
    public static func validateSSHKey(_ key: SSHKeyReference) throws(DigitalOceanError) {
        switch key {
        case .id(let id):
            guard id >= 1 else { throw .localValidation("ssh key id \(id) is not valid; ids start at 1") }
        case .fingerprint(let fingerprint):
            guard isMD5Fingerprint(fingerprint) else {
                var message =
                    "ssh key \(quoted(String(fingerprint.prefix(80)))) is neither a key id nor an MD5 fingerprint as "
                    + "DigitalOcean shows them (16 lower-case hex pairs joined by ':', such as "
                    + "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa)"
                if fingerprint.hasPrefix("SHA256:") || fingerprint.hasPrefix("MD5:") {
                    message += "; `ssh-keygen -l -E md5 -f key.pub` prints it after \"MD5:\""
                }
                throw .localValidation(message)
            }
        }
    }

    /// `aa:bb:…` with 16 pairs of lower-case hex digits.
    static func isMD5Fingerprint(_ text: String) -> Bool {
        let pairs = text.split(separator: ":", omittingEmptySubsequences: false)
        return pairs.count == 16
            && pairs.allSatisfy { pair in
                pair.utf8.count == 2
                    && pair.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
            }
    }

    /// A VPC's id (`vpc_uuid`): a UUID, `760e09ef-dc84-11e8-981e-3cfdfeaae000`.
    public static func validateVPCUUID(_ uuid: String) throws(DigitalOceanError) {
        guard isUUID(uuid) else {
            throw .localValidation(
                "vpc_uuid \(quoted(String(uuid.prefix(80)))) is not a UUID (such as 760e09ef-dc84-11e8-981e-3cfdfeaae000)"
            )
        }
    }

    /// 8-4-4-4-12 hex digits, either case.
    static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.utf8.count) == [8, 4, 4, 4, 12]
            && groups.allSatisfy { group in group.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit) }
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

    static func quoted(_ text: String) -> String {
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
            + (sshKeys.isEmpty ? "" : ", ssh keys \(sshKeys.map(\.description))")
            + (vpcUUID.map { ", vpc \($0)" } ?? "")
            + (withDropletAgent.map { ", droplet agent \($0 ? "required" : "off")" } ?? "")
            + (userData.map { ", user_data \($0.utf8.count) bytes" } ?? "")
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "name": name, "region": region, "size": size, "image": image, "tags": tags, "ipv6": ipv6,
                "monitoring": monitoring, "backups": backups, "sshKeys": sshKeys.map(\.description),
                "vpcUUID": vpcUUID as Any, "withDropletAgent": withDropletAgent as Any,
                "userDataBytes": userData?.utf8.count as Any,
            ],
            displayStyle: .struct
        )
    }
}

/// One entry of `ssh_keys`: a key of the account by its id or its fingerprint (both as DigitalOcean
/// shows them). An id is sent as a JSON integer, a fingerprint as a string.
public enum SSHKeyReference: Sendable, Hashable, Encodable, CustomStringConvertible {
    case id(Int64)
    case fingerprint(String)

    /// A key as configuration or a row's column writes it: digits are an id, anything else a
    /// fingerprint; checked by ``DropletCreateRequest/validateSSHKey(_:)``.
    public init(parsing text: String) throws(DigitalOceanError) {
        let trimmed = text.trimmingWhitespace()
        if !trimmed.isEmpty, trimmed.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
            guard let id = Int64(trimmed) else {
                throw .localValidation("ssh key id \(trimmed.prefix(40)) is too large for a key id")
            }
            self = .id(id)
        } else {
            self = .fingerprint(trimmed)
        }
        try DropletCreateRequest.validateSSHKey(self)
    }

    public var description: String {
        switch self {
        case .id(let id): String(id)
        case .fingerprint(let fingerprint): fingerprint
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .id(let id): try c.encode(id)
        case .fingerprint(let fingerprint): try c.encode(fingerprint)
        }
    }
}
