#!/usr/bin/env bash
# The checks that need tools beyond Rust and the PostgreSQL server binaries (see
# crates/extra-checks): shellcheck, OpenSSH, Python's YAML/HCL parsers, Terraform, Chromium,
# buildah and unshare (the image test runs as root).
# .ci/run installs those tools and calls this after the README test command; run it by hand
# once they are installed. Every one of these tests is #[ignore]d in `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The image test (crates/extra-checks/tests/image.rs) puts the release binary into the image.
cargo build --release --locked -p market-streamer
# Test targets only (no doc tests), so the run ends on the last check's own result line.
cargo test -p extra-checks --tests -- --ignored
