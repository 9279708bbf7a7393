//! Changing a writable store into another valid set, as `kumactl apply`
//! and `kumactl delete` do: the whole resulting set is validated before
//! anything is written, the writes are one commit, and a commit that loses
//! a race with another writer is computed again from the new state (and
//! validated again), so neither writer's change is lost and an invalid set
//! is never committed.

use std::collections::BTreeSet;
use std::time::Duration;

use kuma_model::{LoadError, ParsedFile, Resource, ResourceKey, ResourceSet, Severity};

use crate::{ChangeSet, Put, ResourceStore, StoreContent, StoreError};

/// How many times a change is computed again after losing a race.
const ATTEMPTS: u32 = 50;

/// What a change did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It was not there.
    Created,
    /// It was there, and differed.
    Configured,
    /// It was there, the same.
    Unchanged,
    /// It was removed.
    Deleted,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
        })
    }
}

/// A committed change.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The store's revision after it (unchanged when nothing was written).
    pub revision: u64,
    /// Each resource named, in the order given.
    pub results: Vec<(ResourceKey, Outcome)>,
    /// Commits tried: more than one when other writers came first.
    pub attempts: u32,
    /// Warnings about the resulting set.
    pub warnings: Vec<kuma_model::Diagnostic>,
}

/// Why nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The input, or the set it would leave, breaks Kuma's rules: the
    /// report, as `validate` prints it.
    #[error("invalid:\n{0}")]
    Invalid(LoadError),
    /// The set would be valid resources, but the gateway could not build a
    /// configuration from it (the caller's check).
    #[error("{}", .0.join("\n"))]
    Rejected(Vec<String>),
    /// A resource to delete is not in the store.
    #[error("{0} is not in the store")]
    NotFound(ResourceKey),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept changing the store: given up after this many
    /// attempts, nothing written.
    #[error("the store kept changing under {0} attempts; nothing was written, try again")]
    Busy(u32),
}

/// Creates or replaces the resources of `files` in `store`.
///
/// The store's content with them in place must assemble into a valid set
/// and pass `check` (which returns the problems it finds, say a gateway
/// whose configuration cannot be built). Resources equal to the stored ones
/// are left alone.
pub async fn apply<S, C>(store: &S, files: &[ParsedFile], check: C) -> Result<Applied, ApplyError>
where
    S: ResourceStore,
    C: Fn(&ResourceSet) -> Vec<String> + Send + Sync,
{
    let problems: Vec<_> = files.iter().flat_map(|f| f.diagnostics().iter().cloned()).collect();
    if problems.iter().any(|d| d.severity == Severity::Error) {
        return Err(ApplyError::Invalid(LoadError { diagnostics: problems }));
    }
    let resources: Vec<&Resource> = files.iter().flat_map(|f| f.resources()).map(|r| &**r).collect();
    let keys: BTreeSet<ResourceKey> = resources.iter().map(|r| r.key()).collect();
    let added: Vec<&ParsedFile> = files.iter().collect();
    change(store, &keys, &added, &check, |content| {
        let mut puts = Vec::new();
        let mut results = Vec::new();
        for resource in &resources {
            let key = resource.key();
            let entry = content.entry(&key);
            let outcome = match entry.and_then(|e| e.parsed.resources().first()) {
                None if entry.is_none() => Outcome::Created,
                Some(old) if same(old, resource) => Outcome::Unchanged,
                _ => Outcome::Configured,
            };
            if outcome != Outcome::Unchanged {
                puts.push(Put { resource: (*resource).clone(), version: entry.and_then(|e| e.version) });
            }
            results.push((key, outcome));
        }
        Ok((ChangeSet { base: content.revision, puts, deletes: Vec::new() }, results))
    })
    .await
}

/// Removes `keys` from `store`, if what remains is valid and passes
/// `check` (a Secret still referenced, say, is refused).
pub async fn delete<S, C>(store: &S, keys: &[ResourceKey], check: C) -> Result<Applied, ApplyError>
where
    S: ResourceStore,
    C: Fn(&ResourceSet) -> Vec<String> + Send + Sync,
{
    let set: BTreeSet<ResourceKey> = keys.iter().cloned().collect();
    change(store, &set, &[], &check, |content| {
        let mut deletes = Vec::new();
        for key in keys {
            let entry = content.entry(key).ok_or_else(|| ApplyError::NotFound(key.clone()))?;
            deletes.push((key.clone(), entry.version.unwrap_or_default()));
        }
        let results = keys.iter().map(|k| (k.clone(), Outcome::Deleted)).collect();
        Ok((ChangeSet { base: content.revision, puts: Vec::new(), deletes }, results))
    })
    .await
}

type Plan = (ChangeSet, Vec<(ResourceKey, Outcome)>);

/// Read, plan, validate, commit; again from the new state on a conflict.
async fn change<S, C, P>(
    store: &S,
    replaced: &BTreeSet<ResourceKey>,
    added: &[&ParsedFile],
    check: &C,
    plan: P,
) -> Result<Applied, ApplyError>
where
    S: ResourceStore,
    C: Fn(&ResourceSet) -> Vec<String> + Send + Sync,
    P: Fn(&StoreContent) -> Result<Plan, ApplyError> + Send + Sync,
{
    for attempt in 1..=ATTEMPTS {
        let content = store.read().await?;
        let (changes, results) = plan(&content)?;
        let (set, warnings) = content.assemble_with(replaced, added).map_err(ApplyError::Invalid)?;
        let problems = check(&set);
        if !problems.is_empty() {
            return Err(ApplyError::Rejected(problems));
        }
        if changes.puts.is_empty() && changes.deletes.is_empty() {
            return Ok(Applied { revision: content.revision, results, attempts: attempt, warnings });
        }
        match store.commit(changes).await {
            Ok(revision) => return Ok(Applied { revision, results, attempts: attempt, warnings }),
            Err(StoreError::Conflict { .. } | StoreError::Contended(_)) => tokio::time::sleep(jitter(attempt)).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApplyError::Busy(ATTEMPTS))
}

/// A short, growing, randomised pause, so that racing writers spread out.
fn jitter(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let ceiling = 2u64.pow(attempt.min(6)) * 1_000;
    Duration::from_micros(u64::from(nanos) % ceiling)
}

/// True when storing `new` over `old` would change nothing.
fn same(old: &Resource, new: &Resource) -> bool {
    old.spec == new.spec
        && old.meta.labels == new.meta.labels
        && old.meta.namespace == new.meta.namespace
        && new.meta.creation_time.is_none_or(|t| old.meta.creation_time == Some(t))
}
