//! Following edits to the served paths, by path rather than by inode, so
//! that what editors and Kubernetes do is seen:
//!
//! - a file given on the command line is watched through its folder, so an
//!   atomic save (write a temporary file, rename it over the old one) or a
//!   deletion and re-creation is seen like an in-place write;
//! - a folder is watched recursively, and through its parent, so that when
//!   it is deleted and created again (or a ConfigMap's `..data` link is
//!   swapped) it is watched again;
//! - editors' scratch files (`.#name`, `name~`, `*.swp`, vim's `4913`) are
//!   ignored;
//! - changes settle before they are read: a reload waits until no event has
//!   come for [`QUIET`] (at most [`MAX_WAIT`] after the first), so a file
//!   being written is not read half-way, and a burst of edits is one reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::StoreError;

/// How long the files must stay unchanged before they are read.
pub(crate) const QUIET: Duration = Duration::from_millis(100);
/// The longest a reload waits for quiet after the first event.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(1);

/// A running watch; it stops when dropped.
#[derive(Debug)]
pub(crate) struct FileWatch {
    _watcher: Arc<Mutex<RecommendedWatcher>>,
}

/// Watches `paths` and moves `changes` once each burst of edits settles.
pub(crate) fn watch_files(paths: &[PathBuf], changes: watch::Sender<u64>) -> Result<FileWatch, StoreError> {
    let io = |p: &Path, source| StoreError::Io { path: p.display().to_string(), source };
    let roots: Vec<PathBuf> =
        paths.iter().map(|p| std::path::absolute(p).map_err(|e| io(p, e))).collect::<Result<_, _>>()?;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<notify::Event>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = events_tx.send(e);
        }
    })
    .map_err(|e| StoreError::Io { path: "the file watcher".into(), source: std::io::Error::other(e) })?;
    let watcher = Arc::new(Mutex::new(watcher));
    for root in &roots {
        let parent = root.parent().unwrap_or(root);
        lock(&watcher).watch(parent, RecursiveMode::NonRecursive).map_err(|e| io(parent, std::io::Error::other(e)))?;
        watch_folder(&watcher, root);
    }
    let task_watcher = watcher.clone();
    tokio::spawn(async move {
        while let Some(first) = events_rx.recv().await {
            let mut relevant = is_relevant(&roots, &first);
            let deadline = Instant::now() + MAX_WAIT;
            // Settle: wait for a quiet moment (or the deadline).
            loop {
                let wait = QUIET.min(deadline.saturating_duration_since(Instant::now()));
                match tokio::time::timeout(wait, events_rx.recv()).await {
                    Ok(Some(e)) => relevant |= is_relevant(&roots, &e),
                    Ok(None) => return,
                    Err(_) => break,
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            if !relevant {
                continue;
            }
            // A folder deleted and created again needs a new watch.
            for root in &roots {
                watch_folder(&task_watcher, root);
            }
            changes.send_modify(|c| *c += 1);
        }
    });
    Ok(FileWatch { _watcher: watcher })
}

fn lock(watcher: &Mutex<RecommendedWatcher>) -> std::sync::MutexGuard<'_, RecommendedWatcher> {
    watcher.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches `root` recursively when it is a folder now.
fn watch_folder(watcher: &Mutex<RecommendedWatcher>, root: &Path) {
    if root.is_dir()
        && let Err(e) = lock(watcher).watch(root, RecursiveMode::Recursive)
    {
        warn!(path = %root.display(), "cannot watch: {e}");
    }
}

/// True when an event touches a served path: a root itself, or something
/// under a root folder that is not an editor's scratch file.
fn is_relevant(roots: &[PathBuf], event: &notify::Event) -> bool {
    event.paths.iter().any(|p| roots.iter().any(|r| p == r || (p.starts_with(r) && !is_scratch(p))))
}

/// Editors' temporary, backup, swap and lock files.
fn is_scratch(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    name.starts_with(".#")
        || name.ends_with('~')
        || name == "4913"
        || [".swp", ".swx", ".swo"].iter().any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path: &str) -> notify::Event {
        notify::Event::new(notify::EventKind::Any).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_served_paths_count() {
        let roots = [PathBuf::from("/r/routes.yaml"), PathBuf::from("/r/dir")];
        assert!(is_relevant(&roots, &event("/r/routes.yaml")));
        assert!(is_relevant(&roots, &event("/r/dir")), "the folder itself, deleted or created");
        assert!(is_relevant(&roots, &event("/r/dir/a.yaml")));
        assert!(is_relevant(&roots, &event("/r/dir/..data")), "a ConfigMap swap");
        assert!(!is_relevant(&roots, &event("/r/other.yaml")), "a sibling of a served file");
        assert!(!is_relevant(&roots, &event("/r/dir/.a.yaml.swp")));
        assert!(!is_relevant(&roots, &event("/r/dir/a.yaml~")));
        assert!(!is_relevant(&roots, &event("/r/dir/.#a.yaml")));
        assert!(!is_relevant(&roots, &event("/r/dir/4913")));
    }
}
