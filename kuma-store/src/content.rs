//! What a store holds, parsed: the input of [`kuma_model::ResourceSet`].

use std::collections::BTreeSet;
use std::sync::Arc;

use kuma_model::{Diagnostic, LoadError, ParsedFile, ResourceKey, ResourceSet};

/// One file of a [`crate::FileStore`] or one row of a [`crate::PgStore`],
/// parsed and validated on its own.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The resource a row holds (its primary key), even when its content no
    /// longer parses; `None` for a file, which may hold many.
    pub key: Option<ResourceKey>,
    /// A row's version: it moves on every update, and a write naming an
    /// older one is a conflict. `None` for a file.
    pub version: Option<i64>,
    /// The resources and problems found.
    pub parsed: Arc<ParsedFile>,
}

/// Everything a store holds at one revision.
#[derive(Debug, Clone, Default)]
pub struct StoreContent {
    /// The store's revision when read: it moves with every change (files:
    /// with every read). A [`crate::ChangeSet`] based on it is committed
    /// only if no other change came in between.
    pub revision: u64,
    /// The files or rows, in a stable order.
    pub entries: Vec<Entry>,
    /// Warnings about the store itself (a symbolic link loop skipped).
    pub notes: Vec<Diagnostic>,
}

impl StoreContent {
    /// The validated set, with warnings; or every problem found (in rows,
    /// files, and across them). All or nothing, as
    /// [`ResourceSet::assemble`].
    pub fn assemble(&self) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        self.assemble_with(&BTreeSet::new(), &[])
    }

    /// The set this content would be with the entries of `replaced` left
    /// out and `added` read in: what a change would leave behind.
    pub(crate) fn assemble_with(
        &self,
        replaced: &BTreeSet<ResourceKey>,
        added: &[&ParsedFile],
    ) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        let kept = self
            .entries
            .iter()
            .filter(|e| e.key.as_ref().is_none_or(|k| !replaced.contains(k)))
            .map(|e| e.parsed.as_ref());
        match ResourceSet::assemble(kept.chain(added.iter().copied())) {
            Ok((set, warnings)) => Ok((set, self.notes.iter().cloned().chain(warnings).collect())),
            Err(mut e) => {
                e.diagnostics.extend(self.notes.iter().cloned());
                Err(e)
            }
        }
    }

    /// The entry holding `key`, when the store keeps one per resource.
    pub fn entry(&self, key: &ResourceKey) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key.as_ref() == Some(key))
    }
}
