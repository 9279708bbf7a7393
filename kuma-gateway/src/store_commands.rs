//! `apply`, `get`, `delete` and `export`: the resources of a store, as
//! `kumactl` works with Kuma's.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kuma_model::{Kind, ParsedFile, Resource, ResourceKey, UnknownFields, parse_bytes};
use kuma_store::{ApplyError, ResourceStore};
use kuma_xds_gen::render;

use crate::store::{Resources, report};

/// `apply`.
#[derive(clap::Args)]
pub(crate) struct ApplyArgs {
    /// Files or folders of resources to create or replace; `-` reads
    /// standard input.
    #[arg(short = 'f', long = "file", required = true, value_name = "FILE_OR_DIR")]
    files: Vec<PathBuf>,
    /// The store: `postgres://user:password@host:port/database` (else
    /// KUMA_GATEWAY_STORE).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// `get`.
#[derive(clap::Args)]
pub(crate) struct GetArgs {
    /// A resource type (`MeshGateway`, `meshgateways`, ...); all when absent.
    kind: Option<String>,
    /// A resource name.
    name: Option<String>,
    /// Only this mesh.
    #[arg(long)]
    mesh: Option<String>,
    /// A table for people, or the resources as YAML or JSON.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    resources: Resources,
}

/// `delete`.
#[derive(clap::Args)]
pub(crate) struct DeleteArgs {
    /// The resource type.
    kind: String,
    /// The resource name.
    name: String,
    /// Its mesh (ignored for a Mesh).
    #[arg(long, default_value = "default")]
    mesh: String,
    /// The store (else KUMA_GATEWAY_STORE).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Yaml,
    Json,
}

fn store_only(url: Option<String>) -> Resources {
    Resources { paths: Vec::new(), store: url }
}

/// Reads `-f` arguments: files, folders, or `-` for standard input.
fn read_inputs(paths: &[PathBuf]) -> Result<Vec<ParsedFile>> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(kuma_model::MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            if bytes.len() > kuma_model::MAX_FILE_BYTES {
                bail!("standard input: larger than {} MiB", kuma_model::MAX_FILE_BYTES >> 20);
            }
            out.push(parse_bytes("<stdin>", &bytes, UnknownFields::Reject));
            continue;
        }
        let (files, _) = kuma_store::collect_files(std::slice::from_ref(path))?;
        for file in files {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            out.push(parse_bytes(&file.display().to_string(), &bytes, UnknownFields::Reject));
        }
    }
    Ok(out)
}

/// Prints why a change was refused; exit code 1 for invalid input.
fn refused(e: ApplyError) -> Result<ExitCode> {
    match e {
        ApplyError::Invalid(report_) => {
            report(&report_);
            eprintln!("nothing was changed");
            Ok(ExitCode::from(1))
        }
        ApplyError::Rejected(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} error{}; nothing was changed", problems.len(), if problems.len() == 1 { "" } else { "s" });
            Ok(ExitCode::from(1))
        }
        ApplyError::NotFound(key) => {
            eprintln!("{} {} not found", key.kind, name_of(&key));
            Ok(ExitCode::from(1))
        }
        other => Err(other.into()),
    }
}

fn name_of(key: &ResourceKey) -> String {
    if key.mesh.is_empty() { key.name.clone() } else { format!("{}/{}", key.mesh, key.name) }
}

/// `apply -f ...`.
pub(crate) fn apply(args: ApplyArgs) -> Result<ExitCode> {
    let inputs = read_inputs(&args.files)?;
    let resources = store_only(args.store);
    crate::runtime()?.block_on(async {
        let store = resources.open().await?;
        match kuma_store::apply(&store, &inputs, crate::gateway_problems).await {
            Ok(applied) => {
                for w in &applied.warnings {
                    eprintln!("{w}");
                }
                for (key, outcome) in &applied.results {
                    println!("{} {} {outcome}", key.kind, name_of(key));
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => refused(e),
        }
    })
}

/// `delete TYPE NAME`.
pub(crate) fn delete(args: DeleteArgs) -> Result<ExitCode> {
    let kind = parse_kind(&args.kind)?;
    let mesh = if kind.is_mesh_scoped() { args.mesh } else { String::new() };
    let key = ResourceKey { kind, mesh, name: args.name };
    let resources = store_only(args.store);
    crate::runtime()?.block_on(async {
        let store = resources.open().await?;
        match kuma_store::delete(&store, std::slice::from_ref(&key), crate::gateway_problems).await {
            Ok(_) => {
                println!("{} {} deleted", key.kind, name_of(&key));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => refused(e),
        }
    })
}

/// A resource type as people write it: any case, singular or plural.
fn parse_kind(text: &str) -> Result<Kind> {
    let lower = text.to_ascii_lowercase();
    Kind::ALL
        .iter()
        .copied()
        .find(|k| {
            let name = k.as_str().to_ascii_lowercase();
            lower == name || lower.strip_suffix('s') == Some(name.as_str())
        })
        .with_context(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown resource type {text:?}; expected one of {}", known.join(", "))
        })
}

/// Every resource of a store or of files, in a stable order: by type as
/// Kuma lists them, mesh, name.
fn all_resources(resources: &Resources) -> Result<Vec<(Resource, Option<i64>)>> {
    crate::runtime()?.block_on(async {
        let store = resources.open().await?;
        let content = store.read().await?;
        let problems: Vec<_> = content.entries.iter().flat_map(|e| e.parsed.diagnostics().iter().cloned()).collect();
        if problems.iter().any(|d| d.severity == kuma_model::Severity::Error) {
            report(&kuma_model::LoadError { diagnostics: problems });
            bail!("the resources above cannot be read");
        }
        let mut out: Vec<(Resource, Option<i64>)> = content
            .entries
            .iter()
            .flat_map(|e| e.parsed.resources().iter().map(|r| ((**r).clone(), e.version)))
            .collect();
        let rank = |k: Kind| Kind::ALL.iter().position(|x| *x == k).unwrap_or(usize::MAX);
        out.sort_by(|(a, _), (b, _)| {
            (rank(a.spec.kind()), &a.meta.mesh, &a.meta.name).cmp(&(rank(b.spec.kind()), &b.meta.mesh, &b.meta.name))
        });
        Ok(out)
    })
}

/// Documents as a YAML stream.
fn yaml_stream(docs: &[serde_json::Value]) -> String {
    docs.iter().map(render::to_yaml).collect::<Vec<_>>().join("---\n")
}

/// `get [TYPE [NAME]]`.
pub(crate) fn get(args: GetArgs) -> Result<ExitCode> {
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let all = all_resources(&args.resources)?;
    let chosen: Vec<&(Resource, Option<i64>)> = all
        .iter()
        .filter(|(r, _)| kind.is_none_or(|k| r.spec.kind() == k))
        .filter(|(r, _)| args.name.as_ref().is_none_or(|n| &r.meta.name == n))
        .filter(|(r, _)| args.mesh.as_ref().is_none_or(|m| &r.meta.mesh == m || !r.spec.kind().is_mesh_scoped()))
        .collect();
    if args.name.is_some() && chosen.is_empty() {
        eprintln!("{} {} not found", args.kind.unwrap_or_default(), args.name.unwrap_or_default());
        return Ok(ExitCode::from(1));
    }
    let docs: Vec<serde_json::Value> = chosen.iter().map(|(r, _)| r.to_document()).collect();
    match args.output {
        Output::Yaml => print!("{}", yaml_stream(&docs)),
        Output::Json if args.name.is_some() && docs.len() == 1 => print!("{}", render::to_pretty_json(&docs[0])),
        Output::Json => {
            print!("{}", render::to_pretty_json(&serde_json::json!({ "total": docs.len(), "items": docs })))
        }
        Output::Table => {
            let rows: Vec<[String; 4]> = chosen
                .iter()
                .map(|(r, v)| {
                    [
                        r.spec.kind().to_string(),
                        r.meta.mesh.clone(),
                        r.meta.name.clone(),
                        v.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            crate::table::print(["TYPE", "MESH", "NAME", "VERSION"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `export`: everything, as `apply` takes it back.
pub(crate) fn export(resources: &Resources) -> Result<ExitCode> {
    let all = all_resources(resources)?;
    let docs: Vec<serde_json::Value> = all.iter().map(|(r, _)| r.to_document()).collect();
    print!("{}", yaml_stream(&docs));
    Ok(ExitCode::SUCCESS)
}
