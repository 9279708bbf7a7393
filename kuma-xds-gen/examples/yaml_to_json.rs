//! Kuma resources in, Envoy config out: loads YAML files, translates one
//! gateway data plane and prints its snapshot as canonical JSON.
//!
//! ```sh
//! cargo run -p kuma-xds-gen --example yaml_to_json -- gateway-instance-1 examples/edge-gateway/*.yaml
//! ```

use std::process::ExitCode;

use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dataplane), files) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: yaml_to_json DATAPLANE FILE.yaml...");
        return ExitCode::from(2);
    };
    let mut texts = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push((file.as_str(), text)),
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Parse and validate everything, all or nothing: errors name file, line,
    // resource and field.
    let set = match ResourceSet::load(texts.iter().map(|(f, t)| (*f, t.as_str())), UnknownFields::Reject) {
        Ok((set, warnings)) => {
            for w in warnings {
                eprintln!("{w}");
            }
            set
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Translate the gateway; the same resources in any order give the same bytes.
    let snapshot = match kuma_xds_gen::translate(&set, "default", &dataplane) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match kuma_xds_gen::render::snapshot_json(&snapshot) {
        Ok(json) => {
            print!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
