//! The `varde` binary end to end against a real nats-server: the CSIRT's
//! directory workflow, publish → tail for a recipient and a non-recipient,
//! inspect, and configuration errors that name the key and the file.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use varde_tests::{NatsServer, workspace_bin};

struct Cli {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            bin: workspace_bin("varde").unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("VARDE_CONFIG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "varde {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "varde {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn config(&self, org: &str, root: &str, url: &str) {
        std::fs::create_dir_all(self.path(org)).unwrap();
        std::fs::write(
            self.path(&format!("{org}/varde.toml")),
            format!(
                "[identity]\norg = \"{org}\"\nage = \"../keys/{org}-org.age\"\nsigning = \"../keys/{org}-org.sign\"\n\
                 [directory]\nroot_keys = [\"{root}\"]\nfile = \"../directory.json\"\nstate = \"state/directory.json\"\n\
                 [nats]\nurl = \"{url}\"\n"
            ),
        )
        .unwrap();
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn directory_workflow_publish_tail_and_inspect() {
    let nats = NatsServer::start().await.unwrap();
    let c = Cli::new();
    let root = c.ok(&["directory", "root-keygen", "--out", "root.sign"]);
    let root_pub = root.lines().last().unwrap().trim().to_string();
    assert!(root_pub.starts_with("ed25519:"));
    assert_eq!(mode(&c.path("root.sign")), 0o600);

    c.ok(&[
        "directory",
        "init",
        "--file",
        "draft.json",
        "--csirt",
        "kcsirt",
    ]);
    c.ok(&[
        "directory",
        "add-org",
        "--file",
        "draft.json",
        "--id",
        "gjovik",
        "--name",
        "Gjøvik kommune",
        "--group",
        "admin",
    ]);
    c.ok(&[
        "directory",
        "add-org",
        "--file",
        "draft.json",
        "--id",
        "hamar",
        "--name",
        "Hamar kommune",
        "--group",
        "health",
    ]);
    let bad_group = c.fails(&[
        "directory",
        "add-org",
        "--file",
        "draft.json",
        "--id",
        "x",
        "--name",
        "X",
        "--group",
        "nope",
    ]);
    assert!(
        bad_group.contains("group `nope` is not defined"),
        "{bad_group}"
    );
    for org in ["kcsirt", "gjovik", "hamar"] {
        let out = c.ok(&["keygen", "--org", org, "--role", "org", "--out", "keys"]);
        assert!(out.contains("key id"));
        assert_eq!(mode(&c.path(&format!("keys/{org}-org.age"))), 0o600);
        assert_eq!(mode(&c.path(&format!("keys/{org}-org.sign"))), 0o600);
        c.ok(&[
            "directory",
            "add-key",
            "--file",
            "draft.json",
            "--card",
            &format!("keys/{org}-org.pub.json"),
        ]);
        c.config(org, &root_pub, &nats.url());
    }
    let signed = c.ok(&[
        "directory",
        "sign",
        "--file",
        "draft.json",
        "--root-key",
        "root.sign",
        "--out",
        "directory.json",
    ]);
    assert!(signed.contains("version 1"), "{signed}");
    // signing again always raises the version
    let again = c.ok(&[
        "directory",
        "sign",
        "--file",
        "draft.json",
        "--root-key",
        "root.sign",
        "--out",
        "directory.json",
    ]);
    assert!(again.contains("version 2"), "{again}");
    let verified = c.ok(&[
        "-c",
        "kcsirt/varde.toml",
        "directory",
        "verify",
        "directory.json",
    ]);
    assert!(
        verified.starts_with("OK: directory version 2, 3 orgs, 3 keys"),
        "{verified}"
    );
    let shown = c.ok(&[
        "-c",
        "kcsirt/varde.toml",
        "directory",
        "show",
        "directory.json",
    ]);
    assert!(
        shown.contains("gjovik") && shown.contains("hamar"),
        "{shown}"
    );

    // A directory signed by another root is refused with a clear message.
    c.ok(&["directory", "root-keygen", "--out", "evil.sign"]);
    c.ok(&[
        "directory",
        "sign",
        "--file",
        "draft.json",
        "--root-key",
        "evil.sign",
        "--out",
        "evil.json",
    ]);
    let e = c.fails(&[
        "-c",
        "kcsirt/varde.toml",
        "directory",
        "verify",
        "evil.json",
    ]);
    assert!(e.contains("none of which is a pinned root key"), "{e}");

    c.ok(&["-c", "kcsirt/varde.toml", "bus", "init"]);
    let again = c.ok(&["-c", "kcsirt/varde.toml", "bus", "init"]);
    assert!(
        again.contains("streams created: none; updated: none"),
        "idempotent: {again}"
    );
    c.ok(&[
        "-c",
        "kcsirt/varde.toml",
        "directory",
        "push",
        "directory.json",
    ]);

    let published = c.ok(&[
        "-c",
        "kcsirt/varde.toml",
        "publish",
        "advisory",
        "--tlp",
        "amber",
        "--to",
        "gjovik",
        "--title",
        "NetScaler auth bypass",
        "--summary",
        "Patch now",
        "--severity",
        "critical",
        "--cve",
        "cve-2026-12345",
        "--product",
        "Citrix:NetScaler:< 14.1",
        "--json",
    ]);
    let p: serde_json::Value = serde_json::from_str(published.trim()).unwrap();
    assert_eq!(p["label"], "TLP:AMBER");
    assert_eq!(
        p["subjects"][0]["subject"],
        "varde.v1.kcsirt.org.gjovik.advisory"
    );

    // gjovik reads it decrypted
    let tail = c.ok(&["-c", "gjovik/varde.toml", "tail", "--since", "1h", "--json"]);
    let line: serde_json::Value = serde_json::from_str(tail.lines().next().unwrap()).unwrap();
    assert_eq!(line["header"]["label"], "TLP:AMBER");
    assert_eq!(line["payload"]["title"], "NetScaler auth bypass");
    assert_eq!(line["payload"]["cves"][0], "CVE-2026-12345");
    let human = c.ok(&["-c", "gjovik/varde.toml", "tail", "--since", "1h"]);
    assert!(
        human.contains("[TLP:AMBER] advisory") && human.contains("Citrix NetScaler (< 14.1)"),
        "{human}"
    );
    // hamar is not in the audience: nothing
    let none = c.ok(&["-c", "hamar/varde.toml", "tail", "--since", "1h", "--json"]);
    assert!(none.trim().is_empty(), "hamar must see nothing: {none}");

    // Labels the audience cannot carry are refused before anything is sent.
    let e = c.fails(&[
        "-c",
        "kcsirt/varde.toml",
        "publish",
        "alert",
        "--tlp",
        "red",
        "--group",
        "admin",
        "--title",
        "x",
    ]);
    assert!(e.contains("TLP:RED goes to named people only"), "{e}");
    let e = c.fails(&[
        "-c",
        "kcsirt/varde.toml",
        "publish",
        "alert",
        "--tlp",
        "amber",
        "--community",
        "--title",
        "x",
    ]);
    assert!(e.contains("cannot go to the whole community"), "{e}");

    // CLEAR to the community from a JSON file; hamar sees it now
    std::fs::write(
        c.path("alert.json"),
        r#"{"title":"Phishing wave","body":"Block idporten-fornyelse.example","severity":"high","urgent":true}"#,
    )
    .unwrap();
    c.ok(&[
        "-c",
        "kcsirt/varde.toml",
        "publish",
        "alert",
        "--tlp",
        "TLP:WHITE",
        "--file",
        "alert.json",
    ]);
    let tail = c.ok(&[
        "-c",
        "hamar/varde.toml",
        "tail",
        "--since",
        "1h",
        "--kind",
        "alert",
        "--json",
    ]);
    let line: serde_json::Value = serde_json::from_str(tail.lines().next().unwrap()).unwrap();
    assert_eq!(
        line["header"]["label"], "TLP:CLEAR",
        "WHITE is accepted and written as CLEAR"
    );
    assert_eq!(line["payload"]["title"], "Phishing wave");

    // inspect a raw envelope without any private key: take it from the stream
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("VARDE_O_gjovik").await.unwrap();
    let raw = stream.get_raw_message(1).await.unwrap();
    std::fs::write(c.path("env.bin"), &raw.payload).unwrap();
    let ins = c.ok(&[
        "-c",
        "hamar/varde.toml",
        "inspect",
        "env.bin",
        "--subject",
        "varde.v1.kcsirt.org.gjovik.advisory",
    ]);
    assert!(
        ins.contains("signature  valid") && ins.contains("label      TLP:AMBER"),
        "{ins}"
    );
    assert!(ins.contains("stream     VARDE_O_gjovik"), "{ins}");
    assert!(
        ins.contains("format     VRD2 (age's X25519 stanza"),
        "{ins}"
    );
    assert!(!ins.contains("NetScaler"), "inspect must not decrypt");
    let mut tampered = raw.payload.to_vec();
    let n = tampered.len();
    tampered[n - 70] ^= 1;
    std::fs::write(c.path("bad.bin"), &tampered).unwrap();
    let e = c.fails(&["-c", "hamar/varde.toml", "inspect", "bad.bin"]);
    assert!(e.contains("does not verify"), "{e}");
}

#[test]
fn configuration_errors_name_the_key_and_the_file() {
    let c = Cli::new();
    std::fs::write(c.path("varde.toml"), "[identity]\norg = \"gjovik\"\n").unwrap();
    let e = c.fails(&["tail"]);
    assert!(
        e.contains("varde.toml") && e.contains("identity.age"),
        "{e}"
    );

    std::fs::write(
        c.path("varde.toml"),
        "[nats]\ntls_required = \"sometimes\"\n",
    )
    .unwrap();
    let e = c.fails(&["bus", "init"]);
    assert!(
        e.contains("varde.toml") && e.contains("nats.tls_required"),
        "{e}"
    );

    std::fs::write(
        c.path("varde.toml"),
        "[identity]\norg = \"gjovik\"\nage = \"k.age\"\nsigning = \"k.sign\"\n",
    )
    .unwrap();
    std::fs::write(c.path("k.age"), "AGE-SECRET-KEY-1QQQ\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.path("k.age"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = c.fails(&["tail"]);
    assert!(e.contains("identity.age") && e.contains("chmod 600"), "{e}");

    let e = c.fails(&["-c", "missing.toml", "tail"]);
    assert!(e.contains("missing.toml") && e.contains("not found"), "{e}");

    // VARDE_ environment overrides are read (and checked) too
    std::fs::write(c.path("varde.toml"), "").unwrap();
    let out = Command::new(&c.bin)
        .args(["bus", "init"])
        .current_dir(c.dir.path())
        .env("VARDE_NATS__URL", "nats://127.0.0.1:1")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("nats://127.0.0.1:1"),
        "the env override must be used: {e}"
    );
}

/// `varde bus purge` takes a checked org id (a wildcard or a dot would
/// reach other orgs' subjects) and wants `--yes`; both are refused before
/// any connection.
#[test]
fn bus_purge_refuses_a_wildcard_org_and_wants_yes() {
    let c = Cli::new();
    for bad in ["*", ">", "gjovik.>", "a b"] {
        let e = c.fails(&["bus", "purge", "--org", bad, "--yes"]);
        assert!(e.contains("is not an org id"), "{bad}: {e}");
    }
    let e = c.fails(&["bus", "purge", "--org", "lillehammer"]);
    assert!(e.contains("--yes"), "{e}");
}
