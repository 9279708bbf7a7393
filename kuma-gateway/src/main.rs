//! `kuma-gateway`: the thin command-line front of the library crates.
//!
//! `validate PATH...` checks Kuma resources; the other commands (render,
//! serve, bootstrap, run, explain) arrive with the translator and xDS server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kuma_model::{ResourceSet, Severity, UnknownFields};

#[derive(Parser)]
#[command(name = "kuma-gateway", version, about = "Kuma gateway: Kuma resources in, Envoy config out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check resources: files, or folders searched for *.yaml, *.yml, *.json.
    Validate {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => validate(&paths),
    }
}

fn validate(paths: &[PathBuf]) -> Result<ExitCode> {
    let files = collect_files(paths)?;
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        texts.push((file.display().to_string(), text));
    }
    let loaded =
        ResourceSet::load(texts.iter().map(|(name, text)| (name.as_str(), text.as_str())), UnknownFields::Reject);
    match loaded {
        Ok((set, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            println!("{} resources in {} files: valid", set.len(), files.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{d}");
            }
            let errors = e.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            eprintln!("{errors} errors");
            Ok(ExitCode::from(1))
        }
    }
}

/// Files named on the command line, and the resource files under folders,
/// in a stable (sorted) order.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}
