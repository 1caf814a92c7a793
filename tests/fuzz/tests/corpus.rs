//! Replays the committed corpus through every target in the ordinary test
//! build (no instrumentation, no libFuzzer): a crash found and fixed once
//! stays fixed, and every target has seeds.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use jiff::Timestamp;
use varde_bus::{envelope, seal};

fn corpus() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus"))
}

#[test]
fn every_target_has_seeds_and_replays_them() {
    for (name, target) in varde_fuzz::TARGETS {
        let dir = corpus().join(name);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            target(&data);
            n += 1;
        }
        assert!(n > 0, "no seeds for {name}");
    }
}

/// The `open` seeds reach past the signature and decrypt: the fixed keys
/// are what makes a committed envelope useful to later runs.
#[test]
fn open_seeds_decrypt_with_the_fixed_keys() {
    let fixed = &*varde_fuzz::keys::FIXED;
    let mut opened = 0;
    for e in std::fs::read_dir(corpus().join("open")).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let (pick, signed) = data.split_first().unwrap();
        let sender = &fixed.identities[usize::from(*pick) % fixed.identities.len()];
        assert_eq!(
            signed[envelope::SIGNER_AT..envelope::SIGNER_AT + 8],
            sender.key_id.0
        );
        let bytes = seal::sign_unchecked(sender, signed);
        for me in &fixed.identities {
            let v = seal::verify(&fixed.dir, None, &bytes, Timestamp::now()).unwrap();
            if seal::decrypt(me, v, bytes.len()).is_ok() {
                opened += 1;
            }
        }
    }
    assert!(opened >= 3, "only {opened} opens");
}
