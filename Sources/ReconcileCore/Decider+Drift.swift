#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// What a live row's droplet shows, and the drift: what differs and is not being changed, in words
// that say what to do.

extension Decider {
    // MARK: Facts

    /// Whether the step's effect is what the droplet shows.
    static func holds(_ step: DropletActionKind, on droplet: ObservedDroplet) -> Bool {
        switch step {
        case .rename(let name): droplet.name == name
        case .powerOff: droplet.status == .off
        case .resize(let size, _): droplet.size == size
        case .powerOn: droplet.status == .active
        case .tag(let tag): droplet.otherTags.contains(tag)
        case .untag(let tag): !droplet.otherTags.contains(tag)
        case .backups(let on): droplet.backups == on
        case .shutdown: droplet.status == .off
        }
    }

    /// Whether DigitalOcean takes the step in the droplet's present state.
    static func canTake(_ step: DropletActionKind, droplet: ObservedDroplet) -> Bool {
        switch step {
        case .rename: droplet.status == .active || droplet.status == .off
        case .powerOff: droplet.status == .active
        case .resize, .powerOn: droplet.status == .off
        case .tag, .untag: true
        case .backups: droplet.status == .active || droplet.status == .off
        case .shutdown: droplet.status == .active
        }
    }

    /// A name or size changed at DigitalOcean (not by this daemon) under a row that matched the
    /// droplet when it was last seen: held as drift, not undone, until the row asks for something
    /// else (or an operator clears `refused_change`). A row never seen matching its droplet (a
    /// droplet adopted with another name) is the operator's wish, and applied.
    static func outOfBand(row: ServerRecord, before: DropletFacts?, droplet: ObservedDroplet) -> RefusedChange? {
        guard let before else { return nil }
        if before.name == row.name, droplet.name != row.name {
            return RefusedChange(
                column: "name",
                value: row.name,
                reason:
                    "the droplet was renamed \(droplet.name) at DigitalOcean, not by this daemon, which does not undo it"
            )
        }
        if let size = droplet.size, before.size == row.size, size != row.size {
            return RefusedChange(
                column: "size",
                value: row.size,
                reason: "the droplet was resized to \(size) at DigitalOcean, not by this daemon, which does not undo it"
            )
        }
        return nil
    }

    static func refuses(_ refused: RefusedChange?, column: String, value: String) -> Bool {
        refused.map { $0.column == column && $0.value == value } ?? false
    }

    /// A refusal stands while the row still asks for the refused value and the droplet lacks it.
    func stands(_ refused: RefusedChange, row: ServerRecord, droplet: ObservedDroplet) -> Bool {
        switch refused.column {
        case "name": return row.name == refused.value && droplet.name != refused.value
        case "size": return row.size == refused.value && droplet.size != refused.value
        case "tags":
            let tags = specification(of: row).tags
            let tag = String(refused.value.dropFirst())
            return refused.value.hasPrefix("+")
                ? tags.contains(tag) && !droplet.otherTags.contains(tag)
                : !tags.contains(tag) && droplet.otherTags.contains(tag)
        case "backups":
            let on = refused.value == "on"
            return specification(of: row).backups == on && droplet.backups != on
        default: return false
        }
    }

    /// Whether the droplet has every value the row asks for, and was made as the row's droplet is
    /// to be made (values the answer did not carry count as matching, as they are never compared).
    func matches(_ row: ServerRecord, _ droplet: ObservedDroplet) -> Bool {
        guard
            droplet.name == row.name
                && (droplet.size.map { $0 == row.size } ?? true)
                && (droplet.region.map { $0 == row.region } ?? true)
                && (droplet.image.map { $0 == row.image || droplet.imageID == row.image } ?? true)
        else { return false }
        let specification = specification(of: row)
        return droplet.otherTags == specification.tags
            && (droplet.backups.map { $0 == specification.backups } ?? true)
            && (specification.vpcUUID.flatMap { vpc in droplet.vpcUUID.map { $0 == vpc } } ?? true)
            && (row.state.createdWith.map { $0 == creationOnly(of: row) } ?? true)
    }

    /// What differs and is not being changed, in words that say what to do; nil when nothing.
    func drift(
        of row: ServerRecord,
        droplet: ObservedDroplet,
        change: LiveChange?,
        refused: RefusedChange?,
        policy: LiveChangePolicy
    ) -> String? {
        var items: [String] = []
        let applying = change?.failure == nil ? change?.goal : nil
        if row.name != droplet.name, applying != .rename(to: row.name) {
            if Self.refuses(refused, column: "name", value: row.name), let refused {
                items.append(
                    "name: the row asks \(row.name), the droplet is named \(droplet.name); \(refused.reason). Set the row's name to \(droplet.name) to keep it, or clear refused_change to have it renamed \(row.name)"
                )
            }
            // Otherwise a rename is on its way (once the server is up and no other change runs): not drift.
        }
        if let size = droplet.size, size != row.size, !Self.isResizing(applying, to: row.size) {
            if let failure = change?.failure {
                items.append(
                    "size: the row asks \(row.size), the droplet is \(size); \(failure): powering the droplet back on"
                )
            } else if Self.refuses(refused, column: "size", value: row.size), let refused {
                items.append(
                    "size: the row asks \(row.size), the droplet is \(size); \(refused.reason). Set the row's size to \(size) to keep it, or clear refused_change to have it resized to \(row.size)"
                )
            } else if policy.resize == .off {
                items.append(
                    "size: the row asks \(row.size), the droplet is \(size); resizing powers the server off for about a minute and is off: run the daemon with --resize allow, or set size back to \(size)"
                )
            }
            // Otherwise a permitted resize is on its way (once the server is active and powered
            // on, and no other change runs): not drift. A droplet off by hand is drift of its own.
        }
        if let region = droplet.region, region != row.region {
            items.append(
                "region: the row asks \(row.region), the droplet is in \(region); a droplet cannot move between regions: set delete_requested_at and insert a new row"
            )
        }
        if let image = droplet.image, image != row.image, droplet.imageID != row.image {
            items.append(
                "image: the row asks \(row.image), the droplet runs \(image); the daemon does not rebuild droplets: set delete_requested_at and insert a new row"
            )
        }
        let specification = specification(of: row)
        if let problem = specification.problem { items.append(problem) }
        if let vpc = specification.vpcUUID, let actual = droplet.vpcUUID, actual != vpc {
            items.append(
                "vpc: the row asks VPC \(vpc), the droplet is in \(actual); a droplet's VPC is chosen when it is made: set delete_requested_at and insert a new row to move it"
            )
        }
        if let made = row.state.createdWith, case let asked = creationOnly(of: row), made != asked {
            items.append(
                "made with: \(made); the row and the configuration now ask \(asked); keys, VPC, IPv6, monitoring and user data apply only to new droplets: set delete_requested_at and insert a new row to apply them"
            )
        }
        if let refused, refused.column == "tags" || refused.column == "backups",
            stands(refused, row: row, droplet: droplet)
        {
            items.append(
                "\(refused.column): \(refused.reason). Change the row's \(refused.column), or clear refused_change to have it tried again"
            )
        }
        if droplet.status == .off, change == nil {
            items.append(
                "power: the droplet is powered off at DigitalOcean and no change of this daemon's is in progress; power it on there (or run the daemon with --powered-off power-on), or set delete_requested_at"
            )
        }
        return items.isEmpty ? nil : items.joined(separator: "; and ")
    }

    static func isResizing(_ goal: LiveChange.Goal?, to size: String) -> Bool {
        if case .resize(size, _)? = goal { return true }
        return false
    }
}
