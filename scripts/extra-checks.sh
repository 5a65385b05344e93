#!/usr/bin/env bash
# The checks that need tools beyond Rust and the PostgreSQL server binaries (see
# crates/extra-checks): shellcheck, OpenSSH, Python's YAML/HCL parsers, Terraform, Chromium,
# buildah.
# .ci/run installs those tools and calls this after the README test command; run it by hand
# once they are installed. Every one of these tests is #[ignore]d in `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p extra-checks -- --ignored
