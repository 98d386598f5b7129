//! Postgres: connection, migrations and the catalog.
