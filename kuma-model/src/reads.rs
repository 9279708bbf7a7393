//! What a computation read from a [`ResourceSet`](crate::ResourceSet), so
//! that a control plane can tell whether a change can affect its result.
//!
//! [`record`] runs a closure and returns, with its result, every lookup it
//! made: each resource asked for by key (found or not: creating a missing
//! Secret must count too), and each collection it walked (`in_mesh`,
//! `of_kind`, or the whole set). A change to a resource outside all of them
//! cannot change the result, because the computation never saw it.
//!
//! Recording is per thread: the set's lookups note themselves while a
//! [`record`] call runs on the same thread, which is where translation
//! runs (it is synchronous). Outside [`record`] a lookup costs one
//! thread-local check.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::resource::{Kind, ResourceKey};

/// The resources a computation read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Resources looked up by key.
    keys: BTreeSet<ResourceKey>,
    /// Kinds walked in one mesh (`in_mesh`).
    in_mesh: BTreeSet<(Kind, String)>,
    /// Kinds walked in every mesh (`of_kind`).
    of_kind: BTreeSet<Kind>,
    /// The whole set was walked (`iter`).
    everything: bool,
}

impl Reads {
    /// True when a change to the resource `key` (added, changed or removed)
    /// may change what was computed from these reads.
    pub fn affected_by(&self, key: &ResourceKey) -> bool {
        self.everything
            || self.of_kind.contains(&key.kind)
            || self.keys.contains(key)
            || self.in_mesh.iter().any(|(kind, mesh)| *kind == key.kind && *mesh == key.mesh)
    }

    /// How many lookups and walks were recorded (for logs and tests).
    pub fn len(&self) -> usize {
        self.keys.len() + self.in_mesh.len() + self.of_kind.len() + usize::from(self.everything)
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn merge(&mut self, other: Reads) {
        self.keys.extend(other.keys);
        self.in_mesh.extend(other.in_mesh);
        self.of_kind.extend(other.of_kind);
        self.everything |= other.everything;
    }
}

thread_local! {
    static RECORDING: RefCell<Option<Reads>> = const { RefCell::new(None) };
}

/// Runs `f`, recording what it reads from any `ResourceSet` on this thread.
/// Calls nest: an inner call's reads count for the outer one too.
pub fn record<T>(f: impl FnOnce() -> T) -> (T, Reads) {
    /// Puts the outer recording back with the inner reads added to it,
    /// even when `f` panics.
    struct Restore(Option<Reads>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RECORDING.with(|r| {
                let mut slot = r.borrow_mut();
                let inner = std::mem::replace(&mut *slot, self.0.take());
                if let (Some(inner), Some(outer)) = (inner, slot.as_mut()) {
                    outer.merge(inner);
                }
            });
        }
    }
    let restore = Restore(RECORDING.with(|r| r.borrow_mut().replace(Reads::default())));
    let value = f();
    let reads = RECORDING.with(|r| r.borrow().clone()).unwrap_or_default();
    drop(restore);
    (value, reads)
}

fn note(f: impl FnOnce(&mut Reads)) {
    RECORDING.with(|r| {
        if let Some(reads) = r.borrow_mut().as_mut() {
            f(reads);
        }
    });
}

pub(crate) fn note_key(key: &ResourceKey) {
    note(|r| {
        if !r.keys.contains(key) {
            r.keys.insert(key.clone());
        }
    });
}

pub(crate) fn note_in_mesh(kind: Kind, mesh: &str) {
    note(|r| {
        if !r.in_mesh.iter().any(|(k, m)| *k == kind && m == mesh) {
            r.in_mesh.insert((kind, mesh.to_string()));
        }
    });
}

pub(crate) fn note_of_kind(kind: Kind) {
    note(|r| {
        r.of_kind.insert(kind);
    });
}

pub(crate) fn note_everything() {
    note(|r| r.everything = true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResourceSet, UnknownFields};

    fn key(kind: Kind, mesh: &str, name: &str) -> ResourceKey {
        ResourceKey { kind, mesh: mesh.into(), name: name.into() }
    }

    #[test]
    fn lookups_and_walks_are_recorded_and_nest() {
        let set = ResourceSet::load(
            [("t.yaml", "type: Mesh\nname: a\n---\ntype: Secret\nmesh: a\nname: s\ndata: aGk=\n")],
            UnknownFields::Reject,
        )
        .unwrap()
        .0;
        let ((_, inner), outer) = record(|| {
            let _ = set.get(Kind::Secret, "a", "missing");
            record(|| set.in_mesh(Kind::Dataplane, "a").count())
        });
        assert!(inner.affected_by(&key(Kind::Dataplane, "a", "any")));
        assert!(!inner.affected_by(&key(Kind::Secret, "a", "missing")));
        assert!(outer.affected_by(&key(Kind::Secret, "a", "missing")), "a missing resource that appears counts");
        assert!(outer.affected_by(&key(Kind::Dataplane, "a", "x")), "the inner walk counts for the outer call");
        assert!(!outer.affected_by(&key(Kind::Secret, "a", "s")));
        assert!(!outer.affected_by(&key(Kind::Dataplane, "b", "x")));
        let (_, all) = record(|| set.iter().count());
        assert!(all.affected_by(&key(Kind::ZoneEgress, "", "e")));
        // Nothing is recorded outside `record`.
        let _ = set.get(Kind::Secret, "a", "s");
        assert!(RECORDING.with(|r| r.borrow().is_none()));
    }

    #[test]
    fn a_panic_inside_restores_the_outer_recording() {
        let (_, outer) = record(|| {
            let _ = std::panic::catch_unwind(|| record(|| panic!("inside")));
            note_of_kind(Kind::Mesh);
        });
        assert!(outer.affected_by(&key(Kind::Mesh, "", "m")));
    }
}
