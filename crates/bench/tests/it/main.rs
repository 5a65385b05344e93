//! The integration tests of the benchmark, compiled into one binary.

mod bench_quick;
