//! Log setup shared by `varde`, `varde hub` and `varde-bridge`: tracing to
//! stderr, text or JSON, filtered by `VARDE_LOG` (or `RUST_LOG`).
//!
//! Plaintext of messages above TLP:GREEN is never passed to a log macro
//! anywhere in Varde; logs carry ids, labels, kinds and reasons only.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, default_level: &str) {
    let filter = std::env::var("VARDE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_level.to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
