//! A private PostgreSQL cluster for a test: `initdb` in a temporary folder,
//! `pg_ctl start` on a free loopback port, stopped and removed on drop.
//! Run as root, the server runs as `nobody` (PostgreSQL refuses root).
//! The binaries come from `PG_BIN`, `PATH`, or Debian's
//! `/usr/lib/postgresql/<version>/bin`; a test without them fails saying so.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The user the server runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// A running private cluster.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    /// More server options (`-c name=value ...`).
    extra: String,
}

fn is_root() -> bool {
    // The owner of a file this process just made is its effective user.
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    std::os::unix::fs::MetadataExt::uid(&probe.as_file().metadata().unwrap()) == 0
}

fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file());
    if let Some(dir) = on_path {
        return dir;
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect())
        .unwrap_or_default();
    debian.sort();
    debian.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb and pg_ctl were not found (PG_BIN, PATH, /usr/lib/postgresql/*/bin): install Debian's `postgresql` package (apt-get install postgresql), as .ci/run does"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// Starts a new cluster.
    pub(crate) fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// Starts a new cluster that also speaks TLS with this certificate and
    /// key (PEM files).
    pub(crate) fn start_tls(cert: &Path, key: &Path) -> Postgres {
        Postgres::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Postgres {
        let bin = find_bin();
        let dir = tempfile::Builder::new().prefix("kuma-pg-").tempdir().expect("a temporary folder");
        let root = is_root();
        if root {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown the cluster folder");
        }
        let data = dir.path().join("data");
        let out = pg_command(&bin, "initdb", root)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("running initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut extra = String::new();
        if let Some((cert, key)) = tls {
            // The server reads them as its own user; the key must be private.
            use std::os::unix::fs::PermissionsExt;
            for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
                let to = dir.path().join(name);
                std::fs::copy(from, &to).expect("copying the TLS files");
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
                if root {
                    std::os::unix::fs::chown(&to, Some(NOBODY), Some(NOBODY)).unwrap();
                }
            }
            extra = format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                dir.path().display()
            );
        }
        let mut pg = Postgres { dir, bin, port: 0, extra };
        pg.start_on(free_port());
        pg
    }

    fn start_on(&mut self, port: u16) {
        self.port = port;
        let root = is_root();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off{}",
            self.dir.path().display(),
            self.extra
        );
        let out = pg_command(&self.bin, "pg_ctl", root)
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .expect("running pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The connection URL of database `postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub(crate) fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let _ = pg_command(&self.bin, "pg_ctl", is_root())
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "stop"])
            .stdin(Stdio::null())
            .output();
    }

    /// Starts it again on the same port.
    pub(crate) fn restart(&mut self) {
        let port = self.port;
        self.start_on(port);
    }

    /// Runs SQL with `psql` when it is there (it is a client only).
    pub(crate) fn psql(&self, sql: &str) -> String {
        let psql = if self.bin.join("psql").is_file() { self.bin.join("psql") } else { PathBuf::from("psql") };
        let out = Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-Atc", sql])
            .output()
            .expect("running psql");
        assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn pg_command(bin: &Path, name: &str, as_nobody: bool) -> Command {
    let mut c = Command::new(bin.join(name));
    if as_nobody {
        c.uid(NOBODY).gid(NOBODY).current_dir("/");
    }
    c
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
    }
}
