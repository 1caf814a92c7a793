//! Writes the seed corpus: `varde-fuzz-seeds <corpus-dir>`. Envelopes and
//! the directory are sealed with the fixed keys of `keys.rs`, so they verify
//! and open in later runs; feed seeds are the hub's test fixtures.

use std::path::{Path, PathBuf};

use anyhow_free::Result;
use varde_bus::seal::{self, Draft};
use varde_bus::subject;
use varde_schemas::payload::{Indicator, IndicatorBatch, IndicatorType, Payload};
use varde_schemas::{Audience, GroupId, Kind, OrgId, Tlp};

/// No anyhow in this crate: a boxed error is enough for a seed writer.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
}

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) -> Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(name), data)?;
    Ok(())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hub")
}

fn copy_fixtures(out: &Path, target: &str, sub: &str) -> Result<()> {
    for e in std::fs::read_dir(fixtures().join(sub))? {
        let p = e?.path();
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            write(out, target, name, &std::fs::read(&p)?)?;
        }
    }
    Ok(())
}

fn envelopes(out: &Path) -> Result<()> {
    let fixed = &*varde_fuzz::keys::FIXED;
    let csirt = &fixed.identities[0];
    let member = &fixed.identities[1];
    let batch = IndicatorBatch {
        source: Some("fuzz:seed".into()),
        description: Some("seed".into()),
        indicators: vec![
            Indicator::new(IndicatorType::Ipv4, "192.0.2.7")?,
            Indicator::new(IndicatorType::Domain, "c2.evil.example")?,
        ],
    };
    let alert = br#"{"title":"Seed alert","body":"Patch now.","severity":"high","urgent":true,"references":["https://example.org/a"]}"#;
    let chat = br#"{"conversation":"c1","action":"post","author":{"name":"Kari"},"text":"hei"}"#;
    let drafts = [
        (
            csirt,
            Draft::raw(
                Kind::Alert,
                Tlp::Green,
                Audience::community(),
                alert.to_vec(),
            ),
        ),
        (
            member,
            Draft::new(
                &Payload::Indicator(batch),
                Tlp::Green,
                Audience::orgs([OrgId::new("lillehammer")?]),
            ),
        ),
        (
            member,
            Draft::raw(
                Kind::Chat,
                Tlp::Clear,
                Audience::groups([GroupId::new("admin")?]),
                chat.to_vec(),
            ),
        ),
    ];
    for (i, (who, draft)) in drafts.into_iter().enumerate() {
        let sealed = seal::seal(who, &fixed.dir, draft)?;
        let bytes = sealed.copies[0].bytes.to_vec();
        write(out, "envelope", &format!("sealed-{i}"), &bytes)?;
        write(out, "verify", &format!("sealed-{i}"), &bytes)?;
        // `open` takes a signer pick byte and the signed part.
        let signed = bytes
            .get(
                ..bytes
                    .len()
                    .saturating_sub(varde_bus::envelope::SIGNATURE_LEN),
            )
            .unwrap_or_default();
        let pick = u8::try_from(
            fixed
                .identities
                .iter()
                .position(|x| x.key_id == who.key_id)
                .unwrap_or(0),
        )?;
        let mut o = vec![pick];
        o.extend_from_slice(signed);
        write(out, "open", &format!("sealed-{i}"), &o)?;
        for s in sealed.subjects() {
            write(
                out,
                "subject",
                &format!("sealed-{i}-{}", s.len()),
                s.as_bytes(),
            )?;
        }
    }
    let g = GroupId::new("health")?;
    let o = OrgId::new("gjovik")?;
    write(
        out,
        "subject",
        "group",
        subject::group(&o, &g, Kind::Advisory).as_bytes(),
    )?;
    write(out, "directory", "demo", &fixed.synthetic.signed()?)?;
    Ok(())
}

fn texts(out: &Path) -> Result<()> {
    let patterns = [
        "[ipv4-addr:value = '198.51.100.1']",
        "[domain-name:value = 'evil.example'] OR [url:value = 'http://evil.example/a?b=c']",
        "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
        "[ipv6-addr:value = '2001:db8::1'] AND [email-addr:value = 'a@b.example']",
    ];
    for (i, p) in patterns.iter().enumerate() {
        write(out, "stix_pattern", &format!("p{i}"), p.as_bytes())?;
    }
    let commands = [
        "!varde help",
        "!varde ack 0193b1a0-0000-7000-8000-000000000001",
        "!varde share TLP:GREEN community",
        "!varde sighting 10.20.3.4 seen on our firewall",
        "!varde incident open TLP:AMBER Ransomware på skolenettet",
        "!varde incident note läst",
        "!varde hjelp",
    ];
    for (i, c) in commands.iter().enumerate() {
        write(out, "command", &format!("c{i}"), c.as_bytes())?;
    }
    let events = [
        r#"{"type":"m.room.message","event_id":"$a:x","sender":"@kari:x","origin_server_ts":1,"content":{"msgtype":"m.text","body":"!varde help"}}"#,
        r#"{"type":"m.room.message","event_id":"$b:x","sender":"@kari:x","origin_server_ts":2,"content":{"msgtype":"m.text","body":"* edit","m.new_content":{"msgtype":"m.text","body":"edit"},"m.relates_to":{"rel_type":"m.replace","event_id":"$a:x"}}}"#,
        r#"{"type":"m.reaction","event_id":"$c:x","sender":"@kari:x","origin_server_ts":3,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$a:x","key":"✅"}}}"#,
        r#"{"type":"m.room.redaction","event_id":"$d:x","sender":"@kari:x","origin_server_ts":4,"redacts":"$a:x","content":{}}"#,
        r#"{"type":"m.room.message","event_id":"$e:x","sender":"@kari:x","origin_server_ts":5,"content":{"msgtype":"m.file","body":"iocs.csv","url":"mxc://x/y"}}"#,
    ];
    for (i, e) in events.iter().enumerate() {
        write(out, "timeline", &format!("e{i}"), e.as_bytes())?;
    }
    let config = "[identity]\norg = \"gjovik\"\nage = \"k.age\"\nsigning = \"k.sign\"\n\n[directory]\nroot_keys = [\"ed25519:AAAA\"]\nfile = \"directory.json\"\nstate = \"state/directory.json\"\n\n[nats]\nurl = \"tls://127.0.0.1:4222\"\n\n[consumer]\ncreate = false\n\n[hub]\nwarninglists = [\"wl\"]\n\n[[hub.sources]]\nname = \"misp\"\nformat = \"misp\"\nlocation = \"https://misp.example/feed/\"\nevery = \"15m\"\n";
    write(out, "config", "varde.toml", config.as_bytes())?;
    let bridge = "[matrix]\nhomeserver = \"http://127.0.0.1:8008\"\nuser = \"@varde:example.org\"\npassword = \"x\"\ndevice_id = \"VARDEBRIDGE\"\n\n[[rooms]]\nroom = \"!a:example.org\"\nceiling = \"TLP:AMBER\"\nlanguage = \"nb\"\nkinds = [\"advisory\"]\n[rooms.digest]\nthreshold = 10\nwindow = \"30s\"\n\n[[rooms]]\nroom = \"#soc:example.org\"\n";
    write(out, "bridge_config", "bridge.toml", bridge.as_bytes())?;
    Ok(())
}

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: varde-fuzz-seeds <corpus-dir>")?;
    envelopes(&out)?;
    texts(&out)?;
    copy_fixtures(&out, "misp", "misp")?;
    copy_fixtures(&out, "stix", "stix")?;
    copy_fixtures(&out, "csv", "csv")?;
    copy_fixtures(&out, "list", "list")?;
    println!("seeds written to {}", out.display());
    Ok(())
}
