//! What the relay decides for one message in one room, apart from the
//! room check (`policy`) and the filters (`route`): whether indicators
//! fold into the room's digest, what an advisory revision does to the
//! room's first post of it, and who may wake a room with `@room`.

use std::time::{Duration, Instant};

use varde_schemas::directory::OrgKind;
use varde_schemas::{Header, OrgId};

use varde_bus::directory::VerifiedDirectory;

use crate::config::Digest;

/// A room's indicator posts in the current digest window: once they pass
/// the threshold, further indicators fold into a digest.
#[derive(Debug, Default)]
pub struct DigestWindow {
    start: Option<Instant>,
    posted: usize,
}

impl DigestWindow {
    /// Whether a batch of `n` indicators goes into the digest: a big batch
    /// always, a small one while a digest is open (`open`) or once the
    /// window's individual posts would pass the threshold. A window older
    /// than the configured one starts again from zero.
    pub fn folds(&mut self, cfg: &Digest, now: Instant, n: usize, open: bool) -> bool {
        if self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= cfg.window)
        {
            self.start = Some(now);
            self.posted = 0;
        }
        n >= cfg.threshold || self.posted + n > cfg.threshold || open
    }

    /// `n` indicators were posted one by one (not folded).
    pub fn posted(&mut self, n: usize) {
        self.posted += n;
    }
}

/// What an advisory does to a room, given the revision the room has of it
/// (the first post's event and its latest revision), if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Revision {
    /// The first of this advisory in the room: a new post.
    First,
    /// A newer revision: edit the first post and note it in its thread.
    Edit { first: String },
    /// Not newer than what the room shows: nothing to post.
    Stale,
}

pub fn revision(known: Option<(String, u32)>, revision: u32) -> Revision {
    match known {
        Some((_, shown)) if revision <= shown => Revision::Stale,
        Some((first, _)) => Revision::Edit { first },
        None => Revision::First,
    }
}

/// `@room` wakes everyone: only the CSIRT (the directory's, or an org of
/// kind CSIRT) may ask for it, by the verified sender.
pub fn may_wake_room(dir: &VerifiedDirectory, header: &Header) -> bool {
    let sender: &OrgId = &header.sender.org;
    *sender == dir.doc.csirt
        || dir
            .org(sender.as_str())
            .is_some_and(|o| o.kind == OrgKind::Csirt)
}

/// How long a digest opened now stays open, in milliseconds since the
/// epoch (`window` past `opened_ms`, saturating).
pub fn digest_due(opened_ms: i64, window: Duration) -> i64 {
    opened_ms.saturating_add(i64::try_from(window.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg() -> Digest {
        Digest {
            threshold: 10,
            window: Duration::from_secs(30),
            sample: 5,
        }
    }

    #[test]
    fn small_batches_post_until_the_threshold_then_fold() {
        let (cfg, t0) = (cfg(), Instant::now());
        let mut w = DigestWindow::default();
        for _ in 0..5 {
            assert!(!w.folds(&cfg, t0, 2, false));
            w.posted(2);
        }
        // 10 posted: the next one would pass the threshold.
        assert!(w.folds(&cfg, t0, 1, false));
        // A new window starts from zero.
        assert!(!w.folds(&cfg, t0 + Duration::from_secs(31), 2, false));
    }

    #[test]
    fn big_batches_and_open_digests_always_fold() {
        let (cfg, t0) = (cfg(), Instant::now());
        let mut w = DigestWindow::default();
        assert!(w.folds(&cfg, t0, 10, false));
        assert!(w.folds(&cfg, t0, 1, true));
    }

    #[test]
    fn revisions_edit_forward_only() {
        assert_eq!(revision(None, 1), Revision::First);
        assert_eq!(
            revision(Some(("$first".into(), 2)), 3),
            Revision::Edit {
                first: "$first".into()
            }
        );
        // A replayed or lower revision never rewrites the room's post.
        assert_eq!(revision(Some(("$first".into(), 3)), 3), Revision::Stale);
        assert_eq!(revision(Some(("$first".into(), 3)), 1), Revision::Stale);
    }

    #[test]
    fn only_the_csirt_wakes_a_room() {
        use varde_bus::seal::{self, Draft};
        use varde_schemas::payload::{Alert, Severity};
        use varde_schemas::{Audience, Payload, Tlp};
        let world = varde_testkit::synthetic::Synthetic::demo();
        let dir = world.handle().unwrap().current();
        let alert = Payload::Alert(Alert {
            title: "t".into(),
            body: "b".into(),
            severity: Severity::High,
            urgent: true,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        });
        let header = |org: &str| {
            let sealed = seal::seal(
                &world.identity(org),
                &dir,
                Draft::new(&alert, Tlp::Green, Audience::community()),
            )
            .unwrap();
            sealed.header
        };
        assert!(may_wake_room(&dir, &header("kcsirt")));
        assert!(!may_wake_room(&dir, &header("gjovik")));
    }

    #[test]
    fn digest_due_saturates() {
        assert_eq!(digest_due(1_000, Duration::from_secs(2)), 3_000);
        assert_eq!(digest_due(i64::MAX - 1, Duration::from_secs(2)), i64::MAX);
    }
}
