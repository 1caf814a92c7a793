//! The deployment files under `deploy/`, checked with the real tools where
//! one exists: `nats-server -t` for every shipped server config (with the
//! TLS files and `auth.conf` they include made for the check),
//! `systemd-analyze verify` for the units, a YAML parse of the compose file,
//! `bash -n` for the scripts. (The Containerfile has no checker here: no
//! container engine runs on the test machine.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use varde_cli::provision::{self, dev_ca};
use varde_tests::{repo_root, venv_bin};

fn deploy(p: &str) -> PathBuf {
    repo_root().join("deploy").join(p)
}

/// A temp dir laid out like a config's working directory: the config, a
/// dev CA in `tls/` and an operator-only `auth.conf` at `auth_at`.
fn workdir(config: &Path, auth_at: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(config, d.path().join(config.file_name().unwrap())).unwrap();
    dev_ca::make(&d.path().join("tls"), &[], &["operator".into()]).unwrap();
    let auth_dir = d.path().join(auth_at).parent().unwrap().to_path_buf();
    provision::bootstrap(&auth_dir).unwrap();
    d
}

fn nats_test(dir: &Path, config: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(venv_bin("nats-server").unwrap());
    cmd.arg("-t").arg("-c").arg(config).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_valid(out: &Output, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("is valid"),
        "{what}: {text}"
    );
}

#[test]
fn every_shipped_nats_config_passes_nats_server_test() {
    // The production single node and the three loopback cluster nodes.
    for config in [
        deploy("nats/nats-server.conf"),
        deploy("nats/cluster/n1.conf"),
        deploy("nats/cluster/n2.conf"),
        deploy("nats/cluster/n3.conf"),
    ] {
        let d = workdir(&config, "auth.conf");
        let name = config.file_name().unwrap().to_str().unwrap();
        assert_valid(&nats_test(d.path(), name, &[]), name);
    }
    // The compose nodes' shared config, with each node's name.
    let d = workdir(&deploy("compose/nats/nats.conf"), "auth/auth.conf");
    for node in ["nats-1", "nats-2", "nats-3"] {
        assert_valid(
            &nats_test(d.path(), "nats.conf", &[("NATS_SERVER_NAME", node)]),
            node,
        );
    }

    // The check is real: a config whose TLS key is missing is refused.
    let d = workdir(&deploy("nats/cluster/n1.conf"), "auth.conf");
    std::fs::remove_file(d.path().join("tls/server-key.pem")).unwrap();
    let out = nats_test(d.path(), "n1.conf", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server-key.pem"));
}

#[test]
fn cluster_nodes_are_distinct_and_routed_to_each_other() {
    let mut names = BTreeSet::new();
    let mut listens = BTreeSet::new();
    for n in 1..=3 {
        let text = std::fs::read_to_string(deploy(&format!("nats/cluster/n{n}.conf"))).unwrap();
        let value = |key: &str| -> Vec<String> {
            text.lines()
                .map(str::trim)
                .filter_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').to_string())
                .collect()
        };
        names.insert(value("server_name:")[0].clone());
        // Client and cluster listeners; all on loopback.
        for l in value("listen:") {
            assert!(l.starts_with("127.0.0.1:"), "{l}");
            assert!(listens.insert(l.clone()), "{l} used twice");
        }
        for port in [6222, 6223, 6224] {
            assert!(
                text.contains(&format!("\"nats-route://127.0.0.1:{port}\"")),
                "n{n} misses the route to {port}"
            );
        }
        assert!(
            text.contains("verify: true"),
            "n{n} must verify client certs"
        );
        assert!(text.contains("include \"auth.conf\""));
    }
    assert_eq!(names.len(), 3);
    assert_eq!(listens.len(), 6);
}

fn systemd_verify(unit_file: &Path, as_name: &str) {
    let d = tempfile::tempdir().unwrap();
    // verify insists that ExecStart binaries exist; only their paths change.
    let text = std::fs::read_to_string(unit_file).unwrap();
    let mut patched = text.clone();
    for bin in ["nats-server", "varde-bridge", "varde"] {
        patched = patched.replace(&format!("/usr/local/bin/{bin}"), "/bin/true");
    }
    let path = d.path().join(as_name);
    std::fs::write(&path, patched).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is missing: install systemd (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{as_name}: {stderr}");
    // verify reports unknown keys and bad specifiers as warnings only.
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains(as_name)).collect();
    assert!(about_unit.is_empty(), "{as_name}: {about_unit:?}");
}

#[test]
fn systemd_units_verify_and_are_hardened() {
    for (file, as_name) in [
        ("nats-server.service", "nats-server.service"),
        ("varde-hub.service", "varde-hub.service"),
        ("varde-bridge@.service", "varde-bridge@gjovik.service"),
    ] {
        let unit = deploy(&format!("systemd/{file}"));
        systemd_verify(&unit, as_name);
        let text = std::fs::read_to_string(&unit).unwrap();
        for must in [
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "StateDirectory=",
            "CapabilityBoundingSet=\n",
            "PrivateTmp=yes",
        ] {
            assert!(text.contains(must), "{file} lacks {must:?}");
        }
        assert!(
            text.contains("DynamicUser=yes") || text.contains("User=nats"),
            "{file} runs as root"
        );
    }
    // The check is real: an unknown key is reported.
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.service");
    std::fs::write(
        &bad,
        "[Service]\nExecStart=/bin/true\nProtectSytem=strict\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectSytem"));
}

#[test]
fn compose_file_parses_and_mounts_what_exists() {
    let python = venv_bin("python").unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
        .arg(deploy("compose.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compose: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = compose["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for want in ["nats-1", "nats-2", "nats-3", "synapse", "hub", "bridge"] {
        assert!(names.contains(want), "no service {want}");
    }
    let mut server_names = BTreeSet::new();
    for n in ["nats-1", "nats-2", "nats-3"] {
        let s = &services[n];
        server_names.insert(s["environment"]["NATS_SERVER_NAME"].as_str().unwrap());
        assert_eq!(s["command"][1], "/etc/nats/nats.conf");
    }
    assert_eq!(server_names.len(), 3);
    // Bind mounts: files in the repository exist; generated state is
    // under compose/state/ (git-ignored, made by the documented steps).
    for (name, s) in services {
        for v in s["volumes"].as_array().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if let Some(rel) = src.strip_prefix("./") {
                if rel.starts_with("compose/state") {
                    continue;
                }
                assert!(deploy(rel).exists(), "{name} mounts missing {rel}");
            }
        }
        if let Some(file) = s["build"]["dockerfile"].as_str() {
            assert!(repo_root().join(file).exists(), "{name}: {file}");
        }
    }
}

#[test]
fn shell_scripts_parse() {
    for script in [
        "nats/cluster/start.sh",
        "nats/cluster/stop.sh",
        "local/up.sh",
        "local/down.sh",
    ] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(deploy(script))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
