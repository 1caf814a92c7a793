//! A development certificate authority for TLS to nats-server
//! (`varde nats tls-dev`): a CA, a server certificate for loopback (and any
//! extra names, e.g. the compose service names) and client certificates,
//! made with rcgen. Private keys are written 0600. Production uses the
//! CSIRT's own PKI; these files only make local and test stacks real TLS.
//!
//! Running it again keeps every file that exists and adds what is missing
//! (e.g. a new client certificate), signing with the CA already there.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

pub const CA: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const SERVER: &str = "server.pem";
pub const SERVER_KEY: &str = "server-key.pem";

/// The CA's subject; certificates this module signs name it as issuer, so
/// a reused CA key must come with this exact name.
const CA_NAME: &str = "Varde development CA";

/// Names the server certificate always covers.
pub const LOOPBACK: &[&str] = &["127.0.0.1", "::1", "localhost"];

#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] varde_bus::keys::KeyError),
    #[error("{path}: {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("`{name}` cannot be a certificate name: {detail}")]
    BadName { name: String, detail: String },
    #[error("client name `{0}` must be 1-63 letters, digits, `-` or `_` (it becomes a file name)")]
    BadClient(String),
    #[error("{0} exists without {1}; remove both to make a new CA")]
    HalfCa(PathBuf, PathBuf),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// Files made and files kept by a run.
#[derive(Debug, Default)]
pub struct DevCaReport {
    pub created: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
}

/// The client certificate and key file names for `name`.
pub fn client_files(name: &str) -> (String, String) {
    (
        format!("client-{name}.pem"),
        format!("client-{name}-key.pem"),
    )
}

fn validity(days: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    // A day of slack for clocks that disagree a little.
    (now - Duration::days(1), now + Duration::days(days))
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Varde");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (p.not_before, p.not_after) = validity(3650);
    p
}

fn write_public(path: &Path, text: &str) -> Result<(), DevCaError> {
    std::fs::write(path, text).map_err(|source| DevCaError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn load_key(path: &Path) -> Result<KeyPair, DevCaError> {
    varde_bus::keys::check_private(path)?;
    let pem = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        DevCaError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?);
    KeyPair::from_pem(&pem).map_err(|e| DevCaError::BadKey {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// The CA in `out`: loaded when both files exist, made otherwise.
fn ca(out: &Path, report: &mut DevCaReport) -> Result<Issuer<'static, KeyPair>, DevCaError> {
    let cert = out.join(CA);
    let key = out.join(CA_KEY);
    match (cert.exists(), key.exists()) {
        (true, true) => {
            report.kept.push(cert);
            report.kept.push(key.clone());
            Ok(Issuer::new(ca_params(), load_key(&key)?))
        }
        (false, false) => {
            let pair = KeyPair::generate()?;
            let params = ca_params();
            let cert_pem = params.self_signed(&pair)?.pem();
            let key_pem = zeroize::Zeroizing::new(pair.serialize_pem());
            varde_bus::keys::write_private(&key, key_pem.as_bytes())?;
            write_public(&cert, &cert_pem)?;
            report.created.push(cert);
            report.created.push(key);
            Ok(Issuer::new(params, pair))
        }
        (true, false) => Err(DevCaError::HalfCa(cert, key)),
        (false, true) => Err(DevCaError::HalfCa(key, cert)),
    }
}

/// Signs a leaf certificate into `cert`/`key` unless both exist.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cert: PathBuf,
    key: PathBuf,
    params: CertificateParams,
    report: &mut DevCaReport,
) -> Result<(), DevCaError> {
    if cert.exists() && key.exists() {
        report.kept.push(cert);
        report.kept.push(key);
        return Ok(());
    }
    let pair = KeyPair::generate()?;
    let signed = params.signed_by(&pair, issuer)?;
    let key_pem = zeroize::Zeroizing::new(pair.serialize_pem());
    // A stale half of a pair is replaced, never combined with a new half.
    for p in [&cert, &key] {
        if p.exists() {
            std::fs::remove_file(p).map_err(|source| DevCaError::Write {
                path: p.clone(),
                source,
            })?;
        }
    }
    varde_bus::keys::write_private(&key, key_pem.as_bytes())?;
    write_public(&cert, &signed.pem())?;
    report.created.push(cert);
    report.created.push(key);
    Ok(())
}

/// Makes (or completes) a development PKI in `out`: the CA, a server
/// certificate for loopback plus `extra_names`, and one client certificate
/// per name in `clients`.
pub fn make(
    out: &Path,
    extra_names: &[String],
    clients: &[String],
) -> Result<DevCaReport, DevCaError> {
    std::fs::create_dir_all(out).map_err(|source| DevCaError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let mut report = DevCaReport::default();
    let issuer = ca(out, &mut report)?;

    let mut names: Vec<String> = LOOPBACK.iter().map(|s| s.to_string()).collect();
    names.extend(extra_names.iter().cloned());
    let mut server = CertificateParams::new(names.clone()).map_err(|e| DevCaError::BadName {
        name: names.join(", "),
        detail: e.to_string(),
    })?;
    server
        .distinguished_name
        .push(DnType::CommonName, "Varde nats-server (development)");
    // Servers also dial each other (cluster routes), so they act as clients.
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    (server.not_before, server.not_after) = validity(825);
    leaf(
        &issuer,
        out.join(SERVER),
        out.join(SERVER_KEY),
        server,
        &mut report,
    )?;

    for name in clients {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(DevCaError::BadClient(name.clone()));
        }
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.as_str());
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (p.not_before, p.not_after) = validity(825);
        let (cert, key) = client_files(name);
        leaf(&issuer, out.join(cert), out.join(key), p, &mut report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_private_and_a_second_run_only_adds() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let first = make(d.path(), &[], &["gjovik".into()]).unwrap();
        assert_eq!(first.created.len(), 6, "{first:?}");
        for f in [CA_KEY, SERVER_KEY, "client-gjovik-key.pem"] {
            let mode = std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let ca_before = std::fs::read(d.path().join(CA)).unwrap();
        let second = make(d.path(), &[], &["gjovik".into(), "hamar".into()]).unwrap();
        assert_eq!(
            second.created,
            vec![
                d.path().join("client-hamar.pem"),
                d.path().join("client-hamar-key.pem")
            ]
        );
        assert_eq!(std::fs::read(d.path().join(CA)).unwrap(), ca_before);
        assert!(matches!(
            make(d.path(), &[], &["../evil".into()]),
            Err(DevCaError::BadClient(_))
        ));
        std::fs::remove_file(d.path().join(CA_KEY)).unwrap();
        assert!(matches!(
            make(d.path(), &[], &[]),
            Err(DevCaError::HalfCa(..))
        ));
    }
}
