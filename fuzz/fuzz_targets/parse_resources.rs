//! Arbitrary text through the loader: it must report, never panic.
#![no_main]

use kuma_model::{ResourceSet, UnknownFields};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ResourceSet::load([("fuzz.yaml", text)], UnknownFields::Reject);
        let _ = ResourceSet::load([("fuzz.yaml", text)], UnknownFields::Ignore);
    }
});
