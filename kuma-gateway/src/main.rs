//! The `kuma-gateway` binary (placeholder until the binary issue lands).

fn main() {}
