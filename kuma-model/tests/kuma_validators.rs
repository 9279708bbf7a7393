//! Kuma v2.14.3's own validator cases (`../shared/peer/kuma/validators/`):
//! every invalid case gives exactly Kuma's violations, every valid case
//! passes. The corpus is read from `../shared`; without it this test fails.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kuma_model::{Origin, Severity, UnknownFields, parse_file};
use serde::Deserialize;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("KUMA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("peer/kuma/validators");
    assert!(
        dir.is_dir(),
        "Kuma's validator corpus is missing: expected {} (set KUMA_SHARED_DIR to the folder holding peer/kuma). \
         This test does not pass without it.",
        dir.display()
    );
    dir
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Expected {
    field: String,
    message: String,
}

/// Kuma's test helper parses with `AllowUnknownFields: true`, and one case
/// (`redirect-prevents-other-filters`) relies on it, so the corpus is read
/// the way that helper reads it.
fn violations(file: &Path) -> (Vec<Expected>, Vec<String>, Vec<String>) {
    let text = fs::read_to_string(file).unwrap();
    let parsed = parse_file(&file.display().to_string(), &text, UnknownFields::Ignore);
    let mut kuma = Vec::new();
    let mut extra = Vec::new();
    let mut warnings = Vec::new();
    for d in parsed.diagnostics() {
        match (d.severity, d.origin) {
            (Severity::Warning, _) => warnings.push(d.to_string()),
            (_, Origin::Kuma) => kuma.push(Expected { field: d.field.clone(), message: d.message.clone() }),
            _ => extra.push(format!("{}: {}", d.field, d.message)),
        }
    }
    kuma.sort();
    (kuma, extra, warnings)
}

fn cases(kind: &str, validity: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        fs::read_dir(corpus().join(kind).join(validity)).unwrap().map(|e| e.unwrap().path()).collect();
    out.sort();
    out
}

/// What this gateway adds beyond Kuma on the corpus inputs (see
/// `Origin::Extra`): each entry is a deliberate refusal of input that Kuma
/// accepts and then fails on (or mis-serves) at generation time.
fn expected_extras() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        (
            "redirect-filter-with-backend-routes",
            vec![
                "conf.http.rules[0].filters[0].redirect.status_code: must be one of 301, 302, 303, 307 or 308 (Envoy cannot send other redirects)",
            ],
        ),
        (
            "redirect-prevents-other-filters",
            vec![
                "conf.http.rules[0].filters[0].redirect.status_code: must be one of 301, 302, 303, 307 or 308 (Envoy cannot send other redirects)",
                "conf.http.rules[0].filters[1]: cannot be empty",
            ],
        ),
    ])
}

#[test]
fn invalid_cases_give_kumas_violations() {
    let extras = expected_extras();
    let mut checked = 0;
    let mut failures = Vec::new();
    for kind in ["MeshGateway", "MeshGatewayRoute"] {
        for case in cases(kind, "invalid") {
            let name = case.file_name().unwrap().to_string_lossy().to_string();
            let expected_text = fs::read_to_string(case.join("expected-violations.yaml")).unwrap();
            let mut expected: Vec<Expected> = serde_yaml::from_str(&expected_text).unwrap();
            expected.sort();
            let (got, extra, warnings) = violations(&case.join("input.yaml"));
            if got != expected {
                failures.push(format!("{kind}/{name}:\n  expected {expected:?}\n  got      {got:?}"));
            }
            let want_extra: Vec<String> =
                extras.get(name.as_str()).map(|v| v.iter().map(ToString::to_string).collect()).unwrap_or_default();
            if extra != want_extra {
                failures.push(format!("{kind}/{name}: extra violations {extra:?}, expected {want_extra:?}"));
            }
            if name != "redirect-prevents-other-filters" && !warnings.is_empty() {
                failures.push(format!("{kind}/{name}: unexpected warnings {warnings:?}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 41, "the corpus has 15 + 26 invalid cases");
}

#[test]
fn valid_cases_pass() {
    let mut checked = 0;
    for kind in ["MeshGateway", "MeshGatewayRoute"] {
        for case in cases(kind, "valid") {
            let text = fs::read_to_string(&case).unwrap();
            let parsed = parse_file(&case.display().to_string(), &text, UnknownFields::Reject);
            assert!(
                parsed.diagnostics().is_empty(),
                "{}: {:?}",
                case.display(),
                parsed.diagnostics().iter().map(ToString::to_string).collect::<Vec<_>>()
            );
            assert_eq!(parsed.resources().len(), 1);
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "the corpus has 6 + 4 valid cases");
}

#[test]
fn kuma_leniency_is_a_warning_not_silence() {
    // The one corpus input with a stray field: strict parsing refuses it,
    // lenient parsing reports what it dropped.
    let case = corpus().join("MeshGatewayRoute/invalid/redirect-prevents-other-filters/input.yaml");
    let text = fs::read_to_string(&case).unwrap();
    let strict = parse_file("input.yaml", &text, UnknownFields::Reject);
    let messages: Vec<String> = strict.diagnostics().iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("conf.http.rules[0].filters[1].backends: unknown field `backends`"), "{messages:?}");
    let (_, _, warnings) = violations(&case);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("conf.http.rules[0].filters[1].backends: unknown field ignored"));
}
