//! Checks that need tools beyond the README's prerequisites (Rust and the PostgreSQL server
//! binaries): the deployment files (shellcheck, OpenSSH, Python's YAML/HCL parsers,
//! Terraform). They live in `tests/` and are all `#[ignore]`d, so `cargo test --workspace`
//! runs on a machine with only the prerequisites; `scripts/extra-checks.sh` (called by
//! `.ci/run` after the README test command, which installs the tools) runs them.
