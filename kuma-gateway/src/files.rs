//! Reading resource files: the paths given on the command line, searched
//! for `*.yaml`, `*.yml` and `*.json`, parsed and validated all or nothing.
//! A [`Loader`] keeps each file's parse, so a reload re-parses only the
//! files whose text changed.
//!
//! Folders are searched for visible files only: names starting with `.`
//! are editors' scratch files, or Kubernetes ConfigMap internals (`..data`
//! and its timestamped folders, whose files the visible names link to).
//! Symbolic links are followed, each folder at most once, so a link loop
//! is reported, not walked forever.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kuma_model::{Diagnostic, LoadError, ParsedFile, ResourceSet, UnknownFields, parse_bytes};

/// Files named on the command line, and the resource files under folders,
/// sorted; and a warning for each symbolic link loop skipped.
pub(crate) fn collect_files(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Diagnostic>)> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut visited = BTreeSet::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut visited, &mut out, &mut warnings)?;
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok((out, warnings))
}

fn walk(
    dir: &Path,
    visited: &mut BTreeSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<()> {
    let real = fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !visited.insert(real.clone()) {
        warnings.push(Diagnostic {
            location: kuma_model::Location { file: dir.display().to_string().into(), line: 0 },
            resource: None,
            field: String::new(),
            message: format!("a symbolic link leads back to {}, already read: not followed", real.display()),
            origin: kuma_model::Origin::Extra,
            severity: kuma_model::Severity::Warning,
        });
        return Ok(());
    }
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, visited, out, warnings)?;
        } else if is_resource_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// True for `*.yaml`, `*.yml` and `*.json`.
pub(crate) fn is_resource_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// A load: the set, or every problem found.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// Valid: the set and any warnings.
    Valid(ResourceSet, Vec<Diagnostic>),
    /// Invalid: the report.
    Invalid(LoadError),
}

/// Loads the resources under some paths, remembering each file's parse.
#[derive(Debug)]
pub(crate) struct Loader {
    paths: Vec<PathBuf>,
    cache: BTreeMap<PathBuf, (Vec<u8>, ParsedFile)>,
}

impl Loader {
    /// A loader for `paths` (files or folders).
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        Loader { paths, cache: BTreeMap::new() }
    }

    /// The paths given.
    pub(crate) fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads every file again, re-parses the ones whose text changed, and
    /// assembles the set. I/O errors (a missing path) are errors.
    pub(crate) fn load(&mut self) -> Result<Loaded> {
        let (files, notes) = collect_files(&self.paths)?;
        let mut cache = BTreeMap::new();
        for file in files {
            let text = read_bounded(&file)?;
            let parsed = match self.cache.remove(&file) {
                Some((old, parsed)) if old == text => parsed,
                _ => parse_bytes(&file.display().to_string(), &text, UnknownFields::Reject),
            };
            cache.insert(file, (text, parsed));
        }
        self.cache = cache;
        Ok(match ResourceSet::assemble(self.cache.values().map(|(_, p)| p)) {
            Ok((set, warnings)) => Loaded::Valid(set, notes.into_iter().chain(warnings).collect()),
            Err(mut e) => {
                e.diagnostics.extend(notes);
                Loaded::Invalid(e)
            }
        })
    }

    /// Number of files read by the last load.
    pub(crate) fn file_count(&self) -> usize {
        self.cache.len()
    }
}

/// The bytes of a resource file; a file far larger than any resource file
/// is refused before it is read, so it cannot exhaust memory.
fn read_bounded(file: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    const LIMIT: u64 = kuma_model::MAX_FILE_BYTES as u64;
    let handle = fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut bytes = Vec::new();
    handle.take(LIMIT + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", file.display()))?;
    if bytes.len() as u64 > LIMIT {
        anyhow::bail!("{}: larger than {} MiB, the most a resource file may be", file.display(), LIMIT >> 20);
    }
    Ok(bytes)
}
