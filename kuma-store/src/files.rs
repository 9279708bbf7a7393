//! The file store: the paths given on the command line, searched for
//! `*.yaml`, `*.yml` and `*.json`. Each file's parse is kept, so a re-read
//! parses only the files whose text changed.
//!
//! Folders are searched for visible files only: names starting with `.`
//! are editors' scratch files, or Kubernetes ConfigMap internals (`..data`
//! and its timestamped folders, whose files the visible names link to).
//! Symbolic links are followed, each folder at most once, so a link loop
//! is reported, not walked forever.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kuma_model::{Diagnostic, ParsedFile, UnknownFields, parse_bytes};
use tokio::sync::watch;

use crate::watch::FileWatch;
use crate::{ChangeSet, Entry, ResourceStore, StoreContent, StoreError};

/// Resources in files and folders, followed as they are edited
/// ([`FileStore::follow`]). Read-only: [`ResourceStore::commit`] refuses.
#[derive(Debug)]
pub struct FileStore {
    paths: Vec<PathBuf>,
    state: Arc<Mutex<Cache>>,
    changes: watch::Sender<u64>,
    watch: Mutex<Option<FileWatch>>,
}

#[derive(Debug, Default)]
struct Cache {
    reads: u64,
    files: BTreeMap<PathBuf, (Vec<u8>, Arc<ParsedFile>)>,
}

impl FileStore {
    /// A store of `paths` (files or folders).
    pub fn new(paths: Vec<PathBuf>) -> Self {
        FileStore { paths, state: Arc::default(), changes: watch::channel(0).0, watch: Mutex::new(None) }
    }

    /// The paths given.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Starts following edits: [`ResourceStore::changes`] moves once each
    /// burst of edits has settled. Stops when the store is dropped.
    pub fn follow(&self) -> Result<(), StoreError> {
        let watch = crate::watch::watch_files(&self.paths, self.changes.clone())?;
        *self.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(watch);
        Ok(())
    }

    /// Reads every file again, re-parsing the ones whose text changed.
    pub fn read_now(&self) -> Result<StoreContent, StoreError> {
        read(&self.paths, &self.state)
    }
}

impl ResourceStore for FileStore {
    async fn read(&self) -> Result<StoreContent, StoreError> {
        let (paths, state) = (self.paths.clone(), self.state.clone());
        tokio::task::spawn_blocking(move || read(&paths, &state))
            .await
            .map_err(|e| StoreError::Database(format!("reading files: {e}")))?
    }

    async fn commit(&self, _change: ChangeSet) -> Result<u64, StoreError> {
        Err(StoreError::ReadOnly(
            "a file store is changed by editing its files; `apply` and `delete` need --store postgres://...".into(),
        ))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

fn read(paths: &[PathBuf], state: &Mutex<Cache>) -> Result<StoreContent, StoreError> {
    let (files, notes) = collect_files(paths)?;
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let old = std::mem::take(&mut state.files);
    // Each file is read by the thread that parses it: reading all of them
    // first, one after another, kept the other cores waiting.
    let read = crate::parallel::map(&files, |file| {
        let text = read_bounded(file)?;
        let parsed = match old.get(file) {
            Some((before, parsed)) if *before == text => parsed.clone(),
            _ => Arc::new(parse_bytes(&file.display().to_string(), &text, UnknownFields::Reject)),
        };
        Ok((text, parsed))
    });
    let mut cache = BTreeMap::new();
    for (file, result) in files.into_iter().zip(read) {
        match result {
            Ok(entry) => {
                cache.insert(file, entry);
            }
            Err(e) => {
                // The parses kept stay kept for the next read.
                state.files = old;
                return Err(e);
            }
        }
    }
    state.files = cache;
    state.reads += 1;
    let entries =
        state.files.values().map(|(_, parsed)| Entry { key: None, version: None, parsed: parsed.clone() }).collect();
    Ok(StoreContent { revision: state.reads, entries, notes })
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io { path: path.display().to_string(), source }
}

/// Files named in `paths`, and the resource files under folders, sorted;
/// and a warning for each symbolic link loop skipped.
pub fn collect_files(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Diagnostic>), StoreError> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut visited = BTreeSet::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| io(path, e))?;
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
) -> Result<(), StoreError> {
    let real = fs::canonicalize(dir).map_err(|e| io(dir, e))?;
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
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| io(dir, e))?;
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
fn is_resource_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// The bytes of a resource file; a file far larger than any resource file
/// is refused before it is read, so it cannot exhaust memory.
fn read_bounded(file: &Path) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    const LIMIT: u64 = kuma_model::MAX_FILE_BYTES as u64;
    let handle = fs::File::open(file).map_err(|e| io(file, e))?;
    // Sized from the file's length (a hint: the file may change), so the
    // text is read in one go rather than in doubling steps.
    let hint = handle.metadata().map_or(0, |m| m.len()).min(LIMIT + 1);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0) + 1);
    handle.take(LIMIT + 1).read_to_end(&mut bytes).map_err(|e| io(file, e))?;
    if bytes.len() as u64 > LIMIT {
        return Err(io(
            file,
            std::io::Error::other(format!("larger than {} MiB, the most a resource file may be", LIMIT >> 20)),
        ));
    }
    Ok(bytes)
}
