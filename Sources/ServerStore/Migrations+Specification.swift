extension Migration {
    /// The droplet a row asks for beyond name, region, size and image (design.md, "The droplet the
    /// daemon asks for"): NULL in a column means the daemon's configured default.
    static let dropletSpecification = Migration(
        version: 15,
        name: "droplet specification",
        sql: """
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS ssh_keys TEXT[];
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS vpc_uuid TEXT;
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS tags TEXT[];
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS ipv6 BOOLEAN;
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS monitoring BOOLEAN;
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS backups BOOLEAN;
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS with_droplet_agent BOOLEAN;
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS project_id TEXT;
            -- The daemon's: the keys, VPC and options the bound droplet was made with, so a later
            -- change to them (which only a new droplet can take) is reported as drift.
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS created_with TEXT;
            -- The daemon's: the droplet and the project it was assigned to.
            ALTER TABLE servers ADD COLUMN IF NOT EXISTS project_assigned TEXT;
            \(Migration.grant("GRANT UPDATE (created_with, project_assigned) ON TABLE servers", toWritersOf: "create_attempts"))
            -- A change to any of the platform's columns wakes the daemon.
            CREATE OR REPLACE FUNCTION citrus_servers_notify() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    PERFORM pg_notify('citrus_servers', OLD.id::text);
                    RETURN OLD;
                END IF;
                IF TG_OP = 'UPDATE'
                   AND (NEW.name, NEW.region, NEW.size, NEW.image, NEW.delete_requested_at, NEW.protected,
                        NEW.ssh_keys, NEW.vpc_uuid, NEW.tags, NEW.ipv6, NEW.monitoring, NEW.backups,
                        NEW.with_droplet_agent, NEW.project_id)
                       IS NOT DISTINCT FROM
                       (OLD.name, OLD.region, OLD.size, OLD.image, OLD.delete_requested_at, OLD.protected,
                        OLD.ssh_keys, OLD.vpc_uuid, OLD.tags, OLD.ipv6, OLD.monitoring, OLD.backups,
                        OLD.with_droplet_agent, OLD.project_id)
                THEN
                    RETURN NEW;
                END IF;
                PERFORM pg_notify('citrus_servers', NEW.id::text);
                RETURN NEW;
            END
            $$;
            """
    )
}
