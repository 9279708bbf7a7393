//! `check` reports what `translate` reports, for every example and case, and
//! for each of them with any one Secret spoiled or removed: the errors a
//! check exists for (listener certificates, mesh CAs, backends' TLS
//! material) come from Secrets.

mod common;

use kuma_model::{Resource, ResourceSet, Spec};

/// `check` and `translate` of every gateway of `set` give the same result;
/// how many of them failed.
fn agree(set: &ResourceSet, gateways: &[(String, String)], at: &str) -> usize {
    let mut failed = 0;
    for (mesh, dataplane) in gateways {
        let whole = kuma_xds_gen::translate(set, mesh, dataplane).map(drop).map_err(|e| e.to_string());
        let checked = kuma_xds_gen::check(set, mesh, dataplane).map_err(|e| e.to_string());
        assert_eq!(checked, whole, "{at} {mesh}/{dataplane}");
        failed += usize::from(whole.is_err());
    }
    failed
}

#[test]
fn check_reports_what_translate_reports() {
    let (mut variants, mut failures) = (0, 0);
    for case in common::cases() {
        let set = case.load();
        failures += agree(&set, &case.gateways, &case.name);
        let resources: Vec<Resource> = set.iter().cloned().collect();
        for (i, secret) in resources.iter().enumerate().filter(|(_, r)| matches!(r.spec, Spec::Secret(_))) {
            let spoiled = resources.iter().enumerate().map(|(j, r)| {
                let mut r = r.clone();
                if let (true, Spec::Secret(s)) = (i == j, &mut r.spec) {
                    s.data = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec();
                }
                r
            });
            let removed = resources.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, r)| r.clone());
            let variants_of_this =
                [("spoiled", ResourceSet::from_resources(spoiled)), ("removed", ResourceSet::from_resources(removed))];
            for (how, loaded) in variants_of_this {
                // Removing a Secret that a resource names is refused at load.
                let Ok((set, _)) = loaded else { continue };
                variants += 1;
                failures += agree(&set, &case.gateways, &format!("{} with {} {how}", case.name, secret.meta.name));
            }
        }
    }
    // The error paths ran: some variants broke their gateway.
    eprintln!("{variants} variants, {failures} failing translations");
    assert!(variants >= 8, "only {variants} variants");
    assert!(failures >= 6, "only {failures} failing translations among {variants} variants");
}
