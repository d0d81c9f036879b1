extension Migration {
    /// SQL that grants `privilege` to every role (but the migrating one and PUBLIC) that may
    /// already UPDATE `table.column`: the roles deploy/database-role.sql makes for the daemon get
    /// a new migration's columns or tables too, so an upgraded daemon needs no new grant by hand.
    static func grant(_ privilege: String, toWritersOf column: String, in table: String = "servers") -> String {
        """
        DO $$
        DECLARE
            writer text;
        BEGIN
            FOR writer IN
                SELECT DISTINCT grantee FROM information_schema.column_privileges
                WHERE table_schema = current_schema() AND table_name = '\(table)'
                  AND column_name = '\(column)' AND privilege_type = 'UPDATE'
                  AND grantee <> current_user AND grantee <> 'PUBLIC'
            LOOP
                EXECUTE format('\(privilege) TO %I', writer);
            END LOOP;
        END
        $$;
        """
    }
}
