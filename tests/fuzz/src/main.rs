//! The libFuzzer binary: `VARDE_FUZZ_TARGET=<name> varde-fuzz <corpus>`.
//! One binary for every target keeps the instrumented build to one link.
#![no_main]

use std::sync::LazyLock;

static TARGET: LazyLock<varde_fuzz::Target> = LazyLock::new(|| {
    let name = std::env::var("VARDE_FUZZ_TARGET").unwrap_or_default();
    varde_fuzz::target(&name).unwrap_or_else(|| {
        let names: Vec<&str> = varde_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "varde-fuzz: set VARDE_FUZZ_TARGET to one of: {}",
            names.join(", ")
        );
        std::process::exit(2)
    })
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| (*TARGET)(data));
