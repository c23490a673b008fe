#!/bin/sh
# One-shot, run by the temporal-schema service in temporalio/admin-tools (busybox
# sh, no bash or psql): creates Temporal's two databases on the postgres service
# if missing and brings their schemas up to date. Safe to re-run: create ignores
# an existing database, setup-schema skips a database that already has a
# version, update-schema applies only newer versions.
# Reads the same variables as temporalio/server: DB, POSTGRES_SEEDS, DB_PORT,
# POSTGRES_USER, POSTGRES_PWD, DBNAME, VISIBILITY_DBNAME.
set -eu

SQL_PASSWORD=$POSTGRES_PWD # temporal-sql-tool reads the password from here
export SQL_PASSWORD
schema=/etc/temporal/schema/postgresql/v12

sqltool() {
	temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for spec in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
	db=${spec%%:*}
	dir=$schema/${spec#*:}/versioned
	echo "temporal-schema: $db"
	sqltool --db "$db" create
	sqltool --db "$db" setup-schema -v 0.0
	sqltool --db "$db" update-schema -d "$dir"
done
echo "temporal-schema: done"
