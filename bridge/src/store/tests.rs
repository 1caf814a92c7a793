#![allow(clippy::unwrap_used)]

use super::*;
use varde_schemas::payload::IndicatorType;
use varde_schemas::{Audience, Header, Tlp};
use varde_schemas::{KeyId, Kind, OrgId, Sender};

fn env(n: u8) -> StoredEnvelope {
    StoredEnvelope {
        envelope_id: Uuid::now_v7(),
        subject: format!("varde.v1.kcsirt.org.gjovik.advisory.{n}"),
        bytes: vec![n; 10],
    }
}

#[test]
fn survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s/bridge.sqlite3");
    let e = env(1);
    {
        let s = Store::open(&path).unwrap();
        assert!(!s.is_done(e.envelope_id, "!r").unwrap());
        s.record(&e.envelope_id.to_string(), "!r", Part::Post, Some("$1"))
            .unwrap();
        s.mark_done(e.envelope_id, "!r", Some("$1")).unwrap();
        s.set_advisory("!r", "kcsirt", "A-1", "$1", 1).unwrap();
        s.set_advisory("!r", "kcsirt", "A-1", "$ignored", 3)
            .unwrap();
        s.park("!q", &e).unwrap();
        s.park("!q", &e).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert!(s.is_done(e.envelope_id, "!r").unwrap());
    assert!(!s.is_done(e.envelope_id, "!other").unwrap());
    assert_eq!(
        s.advisory("!r", "kcsirt", "A-1").unwrap(),
        Some(("$1".into(), 3))
    );
    // Another sender's advisory of the same id is another advisory.
    assert_eq!(s.advisory("!r", "gjovik", "A-1").unwrap(), None);
    // The digest key survives a restart: derived ids stay the same.
    let again = Store::open(&path).unwrap();
    assert_eq!(s.derived_id(&["ack", "x"]), again.derived_id(&["ack", "x"]));
    assert_eq!(s.parked_count("!q").unwrap(), 1);
    let p = s.oldest_parked("!q").unwrap().unwrap();
    assert_eq!(p.envelope.bytes, vec![1; 10]);
    s.unpark(p.seq).unwrap();
    assert_eq!(s.parked_count("!q").unwrap(), 0);
}

#[test]
fn withheld_and_releases() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
    let e = env(2);
    let w = Withheld {
        envelope_id: e.envelope_id,
        room_id: "!r".into(),
        reason: "not_encrypted".into(),
        detail: "x".into(),
        label: "TLP:AMBER".into(),
        kind: "advisory".into(),
        at_ms: now_ms(),
        status: WithheldStatus::Withheld,
        envelope: e.clone(),
    };
    s.withhold(&w).unwrap();
    s.withhold(&w).unwrap();
    assert_eq!(s.all_withheld().unwrap().len(), 1);
    let id = s.request_release(e.envelope_id, "!r").unwrap();
    assert_eq!(s.pending_releases().unwrap().len(), 1);
    s.finish_release(id, ReleaseState::Posted, None, Some("$e"))
        .unwrap();
    assert!(s.pending_releases().unwrap().is_empty());
    assert_eq!(s.release(id).unwrap().unwrap().state, ReleaseState::Posted);
}

#[test]
fn parts() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
    assert_eq!(s.part("k", "!r", Part::Post).unwrap(), None);
    s.record("k", "!r", Part::Post, Some("$1")).unwrap();
    s.record("k", "!r", Part::Note, None).unwrap();
    assert_eq!(
        s.part("k", "!r", Part::Post).unwrap(),
        Some(Recorded {
            event_id: Some("$1".into())
        })
    );
    assert_eq!(
        s.part("k", "!r", Part::Note).unwrap(),
        Some(Recorded { event_id: None })
    );
}

#[test]
fn status_texts_stay_as_stored() {
    // Stores written before the enums hold exactly these texts, and the
    // schema's defaults are among them.
    let texts = [
        (WithheldStatus::Withheld.as_str(), "withheld"),
        (WithheldStatus::Released.as_str(), "released"),
        (ReleaseState::Pending.as_str(), "pending"),
        (ReleaseState::Posted.as_str(), "posted"),
        (ReleaseState::Refused.as_str(), "refused"),
        (ReleaseState::Failed.as_str(), "failed"),
        (DigestState::Open.as_str(), "open"),
        (DigestState::Posted.as_str(), "posted"),
        (IncidentState::Open.as_str(), "open"),
        (IncidentState::Closed.as_str(), "closed"),
    ];
    for (got, want) in texts {
        assert_eq!(got, want);
    }
    assert_eq!(
        "released".parse::<WithheldStatus>().unwrap(),
        WithheldStatus::Released
    );
    assert!("Released".parse::<WithheldStatus>().is_err());

    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
    let e = env(5);
    s.withhold(&Withheld {
        envelope_id: e.envelope_id,
        room_id: "!r".into(),
        reason: "not_encrypted".into(),
        detail: "x".into(),
        label: "TLP:AMBER".into(),
        kind: "advisory".into(),
        at_ms: now_ms(),
        status: WithheldStatus::Withheld,
        envelope: e.clone(),
    })
    .unwrap();
    s.set_withheld_status(e.envelope_id, "!r", WithheldStatus::Released)
        .unwrap();
    let raw: String = s
        .with("test", |c| {
            c.query_row("SELECT status FROM withheld", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(raw, "released");
    assert_eq!(
        s.withheld(e.envelope_id, "!r").unwrap().unwrap().status,
        WithheldStatus::Released
    );
    // The column default is what a new request reads as.
    let id = s.request_release(e.envelope_id, "!r").unwrap();
    assert_eq!(s.release(id).unwrap().unwrap().state, ReleaseState::Pending);
}

#[test]
fn digests() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
    let row = DigestRow {
        id: Uuid::now_v7(),
        room_id: "!r".into(),
        opened_ms: 1,
        due_ms: 2,
    };
    s.create_digest(&row).unwrap();
    let (a, b) = (env(3), env(4));
    assert!(s.digest_add("!r", row.id, &a, 10).unwrap());
    assert!(!s.digest_add("!r", row.id, &a, 10).unwrap());
    assert!(s.digest_add("!r", row.id, &b, 10).unwrap());
    assert_eq!(s.open_digest("!r").unwrap().unwrap().id, row.id);
    assert_eq!(s.digest_items(row.id).unwrap().len(), 2);
    s.close_digest(row.id).unwrap();
    assert!(s.open_digest("!r").unwrap().is_none());
}

#[test]
fn events_acks_values() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
    let h = Header {
        v: 1,
        id: Uuid::now_v7(),
        kind: Kind::Alert,
        label: Tlp::Amber,
        sender: Sender {
            org: OrgId::new("kcsirt").unwrap(),
            key: KeyId([1; 8]),
        },
        audience: Audience::orgs([OrgId::new("gjovik").unwrap()]),
        created: jiff::Timestamp::now(),
        expires: None,
    };
    s.record_event("!r", "$e", &h, false).unwrap();
    let row = s.event("!r", "$e").unwrap().unwrap();
    assert_eq!(row.envelope_id, h.id);
    assert_eq!(row.label, Tlp::Amber);
    assert_eq!(row.audience, h.audience);
    assert_eq!(s.event_of(h.id, "!r").unwrap().unwrap().event_id, "$e");
    assert!(s.event_of(h.id, "!other").unwrap().is_none());
    let ack = Uuid::now_v7();
    assert!(s.claim_ack(h.id, "@kari:a", ack).unwrap());
    assert!(!s.claim_ack(h.id, "@kari:a", ack).unwrap());
    assert!(s.claim_ack(h.id, "@ola:a", ack).unwrap());
    let e = StoredEnvelope {
        envelope_id: h.id,
        subject: "s".into(),
        bytes: vec![1, 2],
    };
    s.index_values(&e, &[(IndicatorType::Domain, "evil.example".into())])
        .unwrap();
    assert_eq!(
        s.seen(IndicatorType::Domain, "evil.example", 5)
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.seen(IndicatorType::Domain, "good.example", 5)
            .unwrap()
            .is_empty()
    );
    // The column's default reads as open; closing writes `closed`.
    let incident = Uuid::now_v7();
    assert!(
        s.add_incident(incident, Tlp::Amber, &["kcsirt".into()], 1, &e)
            .unwrap()
    );
    assert_eq!(
        s.incident(incident).unwrap().unwrap().state,
        IncidentState::Open
    );
    s.close_incident(incident).unwrap();
    assert_eq!(
        s.incident(incident).unwrap().unwrap().state,
        IncidentState::Closed
    );
    assert_eq!(s.meta_init("k", "1").unwrap(), "1");
    assert_eq!(s.meta_init("k", "2").unwrap(), "1");
}
