//! Every resource of the examples and test inputs, written as a document
//! (`Resource::to_document`) and read back, is the same resource: what a
//! store keeps and `export` prints loses nothing. (Every kind's fields are
//! covered by `roundtrip.rs`'s generated resources; these are real ones.)

use std::path::{Path, PathBuf};

use kuma_model::{UnknownFields, parse_file};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn documents_read_back_to_the_same_resources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    for dir in ["examples", "kuma-xds-gen/tests/cases"] {
        files(&root.join(dir), &mut paths);
    }
    paths.sort();
    let mut checked = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let parsed = parse_file(&path.display().to_string(), &text, UnknownFields::Reject);
        for resource in parsed.resources() {
            let document = resource.to_document();
            let yaml = serde_yaml::to_string(&document).unwrap();
            let again = parse_file("document.yaml", &yaml, UnknownFields::Reject);
            assert!(again.diagnostics().is_empty(), "{}: {:?}\n{yaml}", path.display(), again.diagnostics());
            let back = &again.resources()[0];
            assert_eq!(back.spec, resource.spec, "{}: {}", path.display(), resource.key());
            let (mut a, mut b) = (resource.meta.clone(), back.meta.clone());
            a.location = Default::default();
            b.location = Default::default();
            assert_eq!(a, b, "{}: {}", path.display(), resource.key());
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} resources found under examples/ and kuma-xds-gen/tests/cases/");
}
