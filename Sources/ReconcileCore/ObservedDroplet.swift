#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A droplet as observed at DigitalOcean, reduced to what decisions need.
public struct ObservedDroplet: Sendable, Hashable, Identifiable {
    public var id: Int64
    public var name: String
    public var status: DropletStatus
    /// Whether the droplet belongs to the fleet this daemon manages (it carries `citrus-host`).
    public var isInFleet: Bool
    /// The row this droplet was created for, read from its `citrus-server:<uuid>` tag. The two are
    /// all a decision needs of the tags, so they are read once, when the droplet is observed, not
    /// on every pass (and a fleet of 50,000 keeps no copy of 100,000 tag strings).
    public var identity: UUID?
    public var createdAt: Date
    /// The first public IPv4 address, if any.
    public var publicIPv4: String?
    /// The first public IPv6 address, if any.
    public var publicIPv6: String?
    /// Where and what it runs, in one immutable box: a pass copies every droplet several times,
    /// and a copy then costs one reference count, not seven.
    private var placement: Placement

    fileprivate final class Placement: Sendable, Hashable {
        struct Fields: Hashable {
            var region, size, image, imageID, vpcUUID: String?
            var backups: Bool?
            var otherTags: [String]
        }

        let fields: Fields

        init(_ fields: Fields) { self.fields = fields }

        func with(_ change: (inout Fields) -> Void) -> Placement {
            var fields = fields
            change(&fields)
            return Placement(fields)
        }

        static func == (a: Placement, b: Placement) -> Bool { a === b || a.fields == b.fields }

        func hash(into hasher: inout Hasher) { hasher.combine(fields) }
    }

    /// The region's slug; nil where the answer did not say.
    public var region: String? {
        get { placement.fields.region }
        set { placement = placement.with { $0.region = newValue } }
    }
    /// The size's slug.
    public var size: String? {
        get { placement.fields.size }
        set { placement = placement.with { $0.size = newValue } }
    }
    /// The image's slug, or its id where it has none.
    public var image: String? {
        get { placement.fields.image }
        set { placement = placement.with { $0.image = newValue } }
    }
    /// The image's id, which a row may name instead of its slug.
    public var imageID: String? {
        get { placement.fields.imageID }
        set { placement = placement.with { $0.imageID = newValue } }
    }
    /// The VPC it is in; nil where the answer did not say.
    public var vpcUUID: String? {
        get { placement.fields.vpcUUID }
        set { placement = placement.with { $0.vpcUUID = newValue } }
    }
    /// Whether backups are on (its `features` hold `backups`); nil where the answer did not say.
    public var backups: Bool? {
        get { placement.fields.backups }
        set { placement = placement.with { $0.backups = newValue } }
    }
    /// Its tags but the daemon's own two (`citrus-host`, the identity tag), sorted.
    public var otherTags: [String] {
        get { placement.fields.otherTags }
        set { placement = placement.with { $0.otherTags = newValue.sorted() } }
    }
    /// An action is in progress on the droplet; DigitalOcean refuses others meanwhile.
    public var locked: Bool

    public init(
        id: Int64,
        name: String,
        status: DropletStatus,
        tags: [String],
        createdAt: Date,
        publicIPv4: String? = nil,
        publicIPv6: String? = nil,
        region: String? = nil,
        size: String? = nil,
        image: String? = nil,
        imageID: String? = nil,
        vpcUUID: String? = nil,
        backups: Bool? = nil,
        locked: Bool = false
    ) {
        self.id = id
        self.name = name
        self.status = status
        self.isInFleet = tags.contains(FleetTags.fleet)
        self.identity = tags.lazy.compactMap(FleetTags.row(fromIdentityTag:)).first
        self.createdAt = createdAt
        self.publicIPv4 = publicIPv4
        self.publicIPv6 = publicIPv6
        self.placement = Placement(
            .init(
                region: region,
                size: size,
                image: image,
                imageID: imageID,
                vpcUUID: vpcUUID,
                backups: backups,
                otherTags: tags.filter { $0 != FleetTags.fleet && !$0.hasPrefix(FleetTags.identityPrefix) }.sorted()
            )
        )
        self.locked = locked
    }

    /// The same droplet, its placement shared with an equal one already seen: a fleet runs a few
    /// regions, sizes and images, and a list of 50,000 droplets then keeps a handful of boxes.
    public func sharingPlacement(with seen: inout Set<PlacementKey>) -> ObservedDroplet {
        var droplet = self
        droplet.placement = seen.insert(PlacementKey(placement)).memberAfterInsert.placement
        return droplet
    }

    /// The droplet once `step` is carried out, where its effect is known without reading it: a
    /// tag request's (its 204 is the effect). Any other step is followed and read, and leaves the
    /// droplet as it is here.
    public func carrying(_ step: DropletActionKind) -> ObservedDroplet {
        var droplet = self
        switch step {
        case .tag(let tag) where !otherTags.contains(tag): droplet.otherTags.append(tag)
        case .untag(let tag): droplet.otherTags.removeAll { $0 == tag }
        default: break
        }
        return droplet
    }

    /// A placement as a set member (see `sharingPlacement(with:)`).
    public struct PlacementKey: Hashable, Sendable {
        fileprivate let placement: Placement

        fileprivate init(_ placement: Placement) { self.placement = placement }
    }
}

public enum FleetTags {
    /// Every droplet the daemon manages carries this tag; droplets without it are never touched.
    public static let fleet = "citrus-host"
    public static let identityPrefix = "citrus-server:"

    public static func identity(for row: UUID) -> String {
        identityPrefix + row.uuidString.lowercased()
    }

    public static func row(fromIdentityTag tag: String) -> UUID? {
        // Parsed by hand: Foundation's `UUID(uuidString:)` goes through `sscanf`, and a pass reads
        // the tags of every droplet in the fleet (see the scale test of `Decider.decide`).
        var tag = tag
        return tag.withUTF8 { bytes -> UUID? in
            let prefix = identityPrefixUTF8
            guard bytes.count == prefix.count + 36 else { return nil }
            for i in 0..<prefix.count where bytes[i] != prefix[i] { return nil }
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let valid = withUnsafeMutableBytes(of: &uuid) { out -> Bool in
                var index = prefix.count
                var byte = 0
                while index < bytes.count {
                    let offset = index - prefix.count
                    if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                        guard bytes[index] == UInt8(ascii: "-") else { return false }
                        index += 1
                        continue
                    }
                    guard let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) else { return false }
                    out[byte] = high << 4 | low
                    byte += 1
                    index += 2
                }
                return byte == 16
            }
            return valid ? UUID(uuid: uuid) : nil
        }
    }

    private static let identityPrefixUTF8 = Array(identityPrefix.utf8)

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
