//! Records the compiler version for the benchmark report.
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(out) = std::process::Command::new(rustc).arg("--version").output()
        && out.status.success()
    {
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("cargo:rustc-env=MARKET_STREAMER_RUSTC={version}");
    }
}
