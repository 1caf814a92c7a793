//! A directory with fixed keys, so that envelopes in the committed corpus
//! (written by `varde-fuzz-seeds`) verify and open in every later run.
//! These keys protect nothing: they exist only here and in the corpus.

use std::sync::{Arc, LazyLock};

use ed25519_dalek::{SigningKey, VerifyingKey};
use varde_bus::directory::VerifiedDirectory;
use varde_bus::keys::Identity;
use varde_schemas::directory::KeyRole;
use varde_testkit::synthetic::Synthetic;

const AGE: [&str; 4] = [
    "AGE-SECRET-KEY-1J7F4QPP36YX3RP3SDRDTMGMKR4K7EES0CM7HPT2M2UR8L0YV50QSEXCR0J",
    "AGE-SECRET-KEY-1CRN4CX27K5Y2VG39ATKNK3DRZF2MDR0LFGE2WRL64WQU4K88R3WS84SQHV",
    "AGE-SECRET-KEY-1NMHGEYQP6CW3C2PAZXTDK85XM4TCCU4F3QJG6KENTYX8HVPDNA9Q57EHUG",
    "AGE-SECRET-KEY-1LKMEXM5CAUTKYT72TZAP9T7M5CC7U33ARATUVC9AVUDWRZJR2K7SQHLE6H",
];

pub struct Fixed {
    /// The demo directory (CSIRT and three members) with the fixed keys.
    pub synthetic: Synthetic,
    pub dir: VerifiedDirectory,
    pub roots: Vec<VerifyingKey>,
    /// One identity per org, in directory order.
    pub identities: Vec<Arc<Identity>>,
}

// The constants above are valid keys and the demo directory is well formed:
// a failure here is a bug in this file, found the first time it runs.
#[allow(clippy::expect_used)]
pub static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let mut s = Synthetic::demo();
    s.root = SigningKey::from_bytes(&[0xA5; 32]);
    let mut identities = Vec::new();
    for (i, org) in s.dir.orgs.iter_mut().enumerate() {
        let age = AGE[i % AGE.len()].parse().expect("fixed age key");
        let seed = u8::try_from(i + 1).unwrap_or(1);
        let id = Arc::new(Identity::from_parts(
            org.id.clone(),
            age,
            SigningKey::from_bytes(&[seed; 32]),
        ));
        org.keys = vec![id.public_key(KeyRole::Org, None)];
        s.orgs.insert(org.id.clone(), id.clone());
        identities.push(id);
    }
    let roots = vec![s.root.verifying_key()];
    let signed = s.signed().expect("fixed directory signs");
    let dir = varde_bus::directory::verify(&signed, &roots).expect("fixed directory verifies");
    Fixed {
        synthetic: s,
        dir,
        roots,
        identities,
    }
});
