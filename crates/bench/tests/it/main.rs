//! The integration tests of the benchmark, compiled into one binary.

mod bench_copy_format;
mod bench_quick;
