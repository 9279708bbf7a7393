//! The store's tables, created and upgraded by numbered migrations.
//!
//! Migrations run in one transaction holding an advisory lock, so replicas
//! starting together wait for each other instead of racing, and a
//! migration already recorded in `kuma_gateway_migrations` is never run
//! again: running them twice is harmless.
//!
//! The tables are the gateway's own (`kuma_gateway_*`), never Kuma's
//! `resources`, so pointing the gateway at a Kuma database by mistake
//! cannot damage it.

use tokio_postgres::Client;

/// The advisory lock key migrations hold ("kumagw" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b75_6d61_6777;

/// Each migration's number and SQL, in order. Never edit one that shipped:
/// add another.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
    -- One row per resource, keyed as Kuma keys its `resources` table.
    CREATE TABLE kuma_gateway_resources (
        type text NOT NULL,
        mesh text NOT NULL,
        name text NOT NULL,
        -- Moves on every update; a write naming an older one is a conflict.
        version bigint NOT NULL,
        -- The spec as Kuma's JSON (camelCase keys).
        spec text NOT NULL,
        labels jsonb NOT NULL DEFAULT '{}',
        -- The Kubernetes namespace of a resource applied in that form.
        namespace text,
        creation_time timestamptz NOT NULL,
        modification_time timestamptz NOT NULL,
        PRIMARY KEY (type, mesh, name)
    );

    -- The store's revision: one counter that every change moves, so a
    -- change computed from a read is committed only if nothing came between.
    CREATE TABLE kuma_gateway_revision (
        id int PRIMARY KEY CHECK (id = 1),
        revision bigint NOT NULL
    );
    INSERT INTO kuma_gateway_revision VALUES (1, 0);

    -- Any change to the resources, by the gateway or by hand, moves the
    -- revision and notifies every replica (delivered when it commits).
    CREATE FUNCTION kuma_gateway_resources_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE r bigint;
    BEGIN
        UPDATE kuma_gateway_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision INTO r;
        PERFORM pg_notify('kuma_gateway_resources', r::text);
        RETURN NULL;
    END $$;
    CREATE TRIGGER kuma_gateway_resources_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kuma_gateway_resources
        FOR EACH STATEMENT EXECUTE FUNCTION kuma_gateway_resources_changed();
    "#,
)];

/// The channel the trigger notifies on.
pub(crate) const CHANNEL: &str = "kuma_gateway_resources";

/// Runs the migrations not yet recorded; returns how many ran.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // "already exists, skipping" is the expected case, not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kuma_gateway_migrations (
            version int PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let done: Vec<i32> =
        tx.query("SELECT version FROM kuma_gateway_migrations", &[]).await?.iter().map(|r| r.get(0)).collect();
    let mut ran = 0;
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO kuma_gateway_migrations (version) VALUES ($1)", &[version]).await?;
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}
