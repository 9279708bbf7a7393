//! The PostgreSQL store against a real PostgreSQL 15 (a private cluster
//! per test, `support/postgres.rs`): CRUD with versions, conflicts,
//! notifications between replicas, resync after a dropped connection,
//! migrations run twice, rows broken by hand, concurrent writers, and
//! PostgreSQL going away and coming back.

mod support;

use std::time::Duration;

use kuma_model::{Kind, ParsedFile, ResourceKey, UnknownFields, parse_file};
use kuma_store::{ApplyError, ChangeSet, Outcome, PgStore, PgStoreOptions, Put, ResourceStore, StoreError};
use support::postgres::Postgres;

fn yaml(text: &str) -> Vec<ParsedFile> {
    let parsed = parse_file("input.yaml", text, UnknownFields::Reject);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics());
    vec![parsed]
}

fn mesh() -> Vec<ParsedFile> {
    yaml("type: Mesh\nname: default\n")
}

fn secret(name: &str, value: &str) -> String {
    use std::fmt::Write;
    let mut b64 = String::new();
    // Small hand-rolled base64 of ASCII text, to keep the test free of crates.
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in value.as_bytes().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::new();
    write!(out, "type: Secret\nname: {name}\nmesh: default\ndata: {b64}\n").unwrap();
    out
}

fn key(kind: Kind, mesh: &str, name: &str) -> ResourceKey {
    ResourceKey { kind, mesh: mesh.into(), name: name.into() }
}

fn no_check(_: &kuma_model::ResourceSet) -> Vec<String> {
    Vec::new()
}

async fn connect(pg: &Postgres) -> PgStore {
    let mut options = PgStoreOptions::default();
    options.resync = Duration::from_secs(3600);
    PgStore::connect(&pg.url(), options).await.expect("connect")
}

async fn changed_within(rx: &mut tokio::sync::watch::Receiver<u64>, limit: Duration) -> bool {
    tokio::time::timeout(limit, rx.changed()).await.is_ok_and(|r| r.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_with_versions_and_conflicts() {
    let pg = Postgres::start();
    let store = connect(&pg).await;
    let applied = kuma_store::apply(&store, &mesh(), no_check).await.unwrap();
    assert_eq!(applied.results, vec![(key(Kind::Mesh, "", "default"), Outcome::Created)]);
    let applied = kuma_store::apply(&store, &yaml(&secret("s", "one")), no_check).await.unwrap();
    assert_eq!(applied.results[0].1, Outcome::Created);
    let s = key(Kind::Secret, "default", "s");
    let content = store.read().await.unwrap();
    assert_eq!(content.entry(&s).unwrap().version, Some(1));
    assert_eq!(content.assemble().unwrap().0.len(), 2);

    // The same again changes nothing; another value is version 2.
    let again = kuma_store::apply(&store, &yaml(&secret("s", "one")), no_check).await.unwrap();
    assert_eq!(again.results[0].1, Outcome::Unchanged);
    assert_eq!(again.revision, content.revision, "nothing written");
    kuma_store::apply(&store, &yaml(&secret("s", "two")), no_check).await.unwrap();
    let now = store.read().await.unwrap();
    assert_eq!(now.entry(&s).unwrap().version, Some(2));
    assert!(now.revision > content.revision);

    // A change computed from the older revision is refused whole.
    let resource = (*now.entry(&s).unwrap().parsed.resources()[0]).clone();
    let stale = ChangeSet {
        base: content.revision,
        puts: vec![Put { resource: resource.clone(), version: Some(2) }],
        deletes: vec![],
    };
    assert!(matches!(store.commit(stale).await, Err(StoreError::Conflict { .. })));
    // And so is a row whose version moved, even at the current revision.
    let stale_row = ChangeSet {
        base: now.revision,
        puts: vec![Put { resource: resource.clone(), version: Some(1) }],
        deletes: vec![],
    };
    assert!(matches!(store.commit(stale_row).await, Err(StoreError::Conflict { .. })));
    // Creating what exists is a conflict too.
    let twice = ChangeSet { base: now.revision, puts: vec![Put { resource, version: None }], deletes: vec![] };
    assert!(matches!(store.commit(twice).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.read().await.unwrap().entry(&s).unwrap().version, Some(2), "nothing was written");

    // What remains must pass the caller's check (a gateway that still
    // needs the secret, say: `kuma-gateway delete` checks every gateway).
    let needed = |set: &kuma_model::ResourceSet| {
        if set.get(Kind::Secret, "default", "s").is_none() { vec!["s is still needed".to_string()] } else { vec![] }
    };
    let refused = kuma_store::delete(&store, std::slice::from_ref(&s), needed).await;
    assert!(matches!(refused, Err(ApplyError::Rejected(_))), "{refused:?}");
    kuma_store::delete(&store, std::slice::from_ref(&s), no_check).await.unwrap();
    assert!(store.read().await.unwrap().entry(&s).is_none());
    let missing = kuma_store::delete(&store, &[s], no_check).await;
    assert!(matches!(missing, Err(ApplyError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_set_is_never_committed() {
    let pg = Postgres::start();
    let store = connect(&pg).await;
    // The same resource twice.
    let twice = format!("{}---\n{}", secret("s", "x"), secret("s", "y"));
    let refused = kuma_store::apply(&store, &yaml(&twice), no_check).await;
    let Err(ApplyError::Invalid(report)) = refused else { panic!("{refused:?}") };
    assert!(report.to_string().contains("input.yaml:6") && report.to_string().contains("duplicate"), "{report}");
    // The caller's check refuses too.
    let rejected = kuma_store::apply(&store, &mesh(), |_: &kuma_model::ResourceSet| vec!["no".to_string()]).await;
    assert!(matches!(rejected, Err(ApplyError::Rejected(_))));
    assert!(store.read().await.unwrap().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hear_changes_and_catch_up_after_a_dropped_connection() {
    let pg = Postgres::start();
    let a = connect(&pg).await;
    let b = connect(&pg).await;
    let mut connected = b.connected();
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c)).await.unwrap().unwrap();
    let mut heard = b.changes();
    heard.borrow_and_update();
    kuma_store::apply(&a, &mesh(), no_check).await.unwrap();
    assert!(changed_within(&mut heard, Duration::from_secs(10)).await, "B was notified");
    assert_eq!(b.read().await.unwrap().entries.len(), 1);

    // Cut every other connection (B's listener among them), write while B
    // reconnects: B hears of it through its reconnection.
    heard.borrow_and_update();
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kuma-gateway' AND pid <> pg_backend_pid()");
    kuma_store::apply(&a, &yaml(&secret("s", "x")), no_check).await.unwrap();
    assert!(changed_within(&mut heard, Duration::from_secs(10)).await, "B caught up");
    let content = b.read().await.unwrap();
    assert_eq!(content.entries.len(), 2, "B reads again after its connection was cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_however_many_replicas_start() {
    let pg = Postgres::start();
    let (a, b, c) = tokio::join!(connect(&pg), connect(&pg), connect(&pg));
    drop((a, b, c));
    let _d = connect(&pg).await;
    assert_eq!(pg.psql("SELECT count(*) FROM kuma_gateway_migrations").trim(), "1");
    assert_eq!(pg.psql("SELECT revision FROM kuma_gateway_revision").trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_broken_by_hand_is_reported_by_name() {
    let pg = Postgres::start();
    let store = connect(&pg).await;
    kuma_store::apply(&store, &mesh(), no_check).await.unwrap();
    pg.psql(
        "INSERT INTO kuma_gateway_resources VALUES ('MeshGateway', 'default', 'edge', 1, '{\"conf\": {\"listeners\": [{\"port\": 0}]}}', '{}', NULL, now(), now())",
    );
    let content = store.read().await.unwrap();
    let report = content.assemble().unwrap_err().to_string();
    assert!(report.contains("postgres:MeshGateway/default/edge"), "{report}");
    // And an apply that fixes it is based on the row as it is.
    let fixed = kuma_store::apply(
        &store,
        &yaml("type: MeshGateway\nname: edge\nmesh: default\nselectors:\n- match:\n    kuma.io/service: edge\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n"),
        no_check,
    )
    .await
    .unwrap();
    assert_eq!(fixed.results[0].1, Outcome::Configured);
    store.read().await.unwrap().assemble().expect("valid again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    let pg = Postgres::start();
    let setup = connect(&pg).await;
    kuma_store::apply(&setup, &mesh(), no_check).await.unwrap();
    kuma_store::apply(&setup, &yaml(&secret("shared", "0")), no_check).await.unwrap();
    let (a, b) = (connect(&pg).await, connect(&pg).await);
    let writer = |store: PgStore, who: &'static str| async move {
        let mut attempts = 0;
        for i in 0..100 {
            // Its own resource, and the shared one.
            let own = secret(&format!("{who}-{i}"), &format!("{who}{i}"));
            let shared = secret("shared", &format!("{who}{i}"));
            let applied = kuma_store::apply(&store, &yaml(&format!("{own}---\n{shared}")), no_check).await.unwrap();
            attempts += applied.attempts;
        }
        attempts
    };
    let (ta, tb) = tokio::join!(tokio::spawn(writer(a, "a")), tokio::spawn(writer(b, "b")));
    let attempts = ta.unwrap() + tb.unwrap();
    let content = setup.read().await.unwrap();
    let set = content.assemble().unwrap().0;
    assert_eq!(set.len(), 1 + 1 + 200, "the mesh, the shared secret and all 200 own secrets");
    // Every write of the shared secret changed it, so its version counts them
    // all: none was lost to a concurrent writer.
    let shared = content.entry(&key(Kind::Secret, "default", "shared")).unwrap();
    assert_eq!(shared.version, Some(1 + 200));
    eprintln!("200 applies took {attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_and_coming_back() {
    let mut pg = Postgres::start();
    let store = connect(&pg).await;
    kuma_store::apply(&store, &mesh(), no_check).await.unwrap();
    let mut connected = store.connected();
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c)).await.unwrap().unwrap();
    pg.stop();
    let read = store.read().await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    let message = read.unwrap_err().to_string();
    assert!(message.contains(&format!("PostgreSQL at 127.0.0.1:{}/postgres", pg.port)), "{message}");
    let write = kuma_store::apply(&store, &yaml(&secret("s", "x")), no_check).await;
    assert!(matches!(write, Err(ApplyError::Store(StoreError::Unavailable(_)))), "{write:?}");
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| !*c)).await.unwrap().unwrap();
    // A store that starts while PostgreSQL is down fails clearly.
    let down = PgStore::connect(&pg.url(), PgStoreOptions::default()).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");

    pg.restart();
    tokio::time::timeout(Duration::from_secs(15), connected.wait_for(|c| *c)).await.unwrap().unwrap();
    kuma_store::apply(&store, &yaml(&secret("s", "x")), no_check).await.unwrap();
    assert_eq!(store.read().await.unwrap().entries.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_speaks_tls_and_verifies_the_server() {
    let certs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs");
    // A server certificate for IP:127.0.0.1, issued by a test CA.
    let pg = Postgres::start_tls(&certs.join("postgres.crt"), &certs.join("postgres.key"));
    let url = format!("{}?sslmode=require", pg.url());
    let mut options = PgStoreOptions::default();
    options.ca_pem = Some(std::fs::read(certs.join("postgres-ca.crt")).unwrap());
    let store = PgStore::connect(&url, options.clone()).await.expect("TLS connection");
    kuma_store::apply(&store, &mesh(), no_check).await.unwrap();
    let mut connected = store.connected();
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c)).await.unwrap().unwrap();
    let ssl = pg.psql("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'kuma-gateway'");
    assert_eq!(ssl.trim(), "2", "the command and the notification connections are both TLS");

    // A server whose certificate the CA given did not sign is refused.
    options.ca_pem = Some(std::fs::read(certs.join("rsa.crt")).unwrap());
    let refused = PgStore::connect(&url, options).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    // And sslmode=require never falls back to plain text.
    let plain = Postgres::start();
    let mut options = PgStoreOptions::default();
    options.ca_pem = Some(std::fs::read(certs.join("postgres-ca.crt")).unwrap());
    let refused = PgStore::connect(&format!("{}?sslmode=require", plain.url()), options).await;
    assert!(refused.is_err(), "{refused:?}");
}
