//! `validate` and `render --bootstrap` of the 10,000-rule gateway (the
//! mixed set of `support/resources.rs`), side by side with Envoy's own
//! `--mode validate` of the rendered bootstrap, against issue 17's targets:
//! `validate` at 50 MB/s of YAML or more; `render --bootstrap` within 0.1 ×
//! Envoy's time and 64 MiB.
//!
//! Each command runs `BENCH_RUNS` times (7) as a fresh process, as a user
//! runs it; the median time and the largest peak RSS are reported. Peak RSS
//! is read through GNU time (`/usr/bin/time`); without it, it is reported
//! as not measured.
//!
//! `cargo bench -p kuma-gateway --bench commands` (needs Envoy: ENVOY_BIN,
//! or `scripts/install-envoy`).

#![allow(missing_docs)]

#[path = "support/resources.rs"]
#[allow(dead_code, unreachable_pub)]
mod resources;

#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GNU_TIME: &str = "/usr/bin/time";

/// One run of `program args`, stdout to `out`: its wall time and, with GNU
/// time, its peak RSS in KiB.
fn run(program: &Path, args: &[&str], out: &Path) -> (Duration, Option<u64>) {
    let report = std::env::temp_dir().join(format!("kuma-gateway-bench-rss-{}", std::process::id()));
    let mut cmd = if Path::new(GNU_TIME).is_file() {
        let mut c = Command::new(GNU_TIME);
        c.args(["-f", "%M", "-o"]).arg(&report).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).stdout(std::fs::File::create(out).unwrap()).stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "{} {args:?} failed", program.display());
    let rss = std::fs::read_to_string(&report).ok().and_then(|t| t.trim().lines().last()?.parse().ok());
    let _ = std::fs::remove_file(&report);
    (took, rss)
}

/// The median time and largest peak RSS of `runs` runs.
fn measure(runs: usize, program: &Path, args: &[&str], out: &Path) -> (Duration, Option<u64>) {
    let mut times = Vec::new();
    let mut peak: Option<u64> = None;
    for _ in 0..runs {
        let (t, rss) = run(program, args, out);
        times.push(t);
        peak = match (peak, rss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    times.sort();
    (times[times.len() / 2], peak)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("not measured (no /usr/bin/time)".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn main() {
    // `cargo test` runs benches without --bench; keep that fast.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let dir = support::temp_dir("bench-commands");
    resources::write_gateway(&dir, "gw", 8080, 10_000);
    resources::write_backend(&dir, 9000);
    let yaml_bytes: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let gateway = Path::new(env!("CARGO_BIN_EXE_kuma-gateway"));
    let envoy = support::envoy_bin();
    let d = dir.to_str().unwrap();
    let scratch = dir.with_extension("out");
    let bootstrap = dir.with_extension("bootstrap.yaml");

    let (validate, validate_rss) = measure(runs, gateway, &["validate", d], &scratch);
    let rate = yaml_bytes as f64 / 1e6 / validate.as_secs_f64();
    let (render, render_rss) = measure(runs, gateway, &["render", "--dataplane", "gw", "--bootstrap", d], &bootstrap);
    let (json, json_rss) =
        measure(runs, gateway, &["render", "--dataplane", "gw", "--bootstrap", "--format", "json", d], &scratch);
    let b = bootstrap.to_str().unwrap();
    let (envoy_time, envoy_rss) =
        measure(3.min(runs), &envoy, &["--mode", "validate", "-c", b, "-l", "error"], &scratch);
    let ratio = |t: Duration| t.as_secs_f64() / envoy_time.as_secs_f64();

    println!("10,000-rule gateway: {:.2} MB of YAML", yaml_bytes as f64 / 1e6);
    println!("{:<34} {:>9} {:>24}   target", "", "median", "peak RSS");
    println!(
        "{:<34} {:>7.1}ms {:>24}   >= 50 MB/s: {:.1} MB/s",
        "validate",
        validate.as_secs_f64() * 1e3,
        mib(validate_rss),
        rate
    );
    println!(
        "{:<34} {:>7.1}ms {:>24}   <= 0.1 x Envoy, 64 MiB: {:.3} x",
        "render --bootstrap (YAML)",
        render.as_secs_f64() * 1e3,
        mib(render_rss),
        ratio(render)
    );
    println!(
        "{:<34} {:>7.1}ms {:>24}   {:.3} x",
        "render --bootstrap --format json",
        json.as_secs_f64() * 1e3,
        mib(json_rss),
        ratio(json)
    );
    println!("{:<34} {:>7.1}ms {:>24}", "envoy --mode validate (YAML)", envoy_time.as_secs_f64() * 1e3, mib(envoy_rss));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&scratch);
    let _ = std::fs::remove_file(&bootstrap);
}
