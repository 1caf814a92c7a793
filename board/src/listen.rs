//! Where the board listens. Loopback by default; any other address only
//! over TLS that requires a client certificate from the CSIRT's CA (the
//! operators' certificates), checked by rustls before a request is read.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client gets this long to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "the board would listen on {0}, which is not loopback, without TLS: give --tls-cert, --tls-key and --client-ca (the CSIRT's CA for operators' certificates)"
    )]
    ExposedWithoutTls(SocketAddr),
    #[error("{path}: {detail}")]
    Pem { path: PathBuf, detail: String },
    #[error(transparent)]
    Key(#[from] varde_bus::keys::KeyError),
    #[error("TLS settings refused: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The board's certificate and key, and the CA whose client certificates
/// it accepts.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Refuses a non-loopback address without TLS.
pub fn check_exposure(addr: SocketAddr, tls: Option<&TlsFiles>) -> Result<(), ListenError> {
    if tls.is_none() && !addr.ip().is_loopback() {
        return Err(ListenError::ExposedWithoutTls(addr));
    }
    Ok(())
}

fn pem_err(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> ListenError + '_ {
    move |e| ListenError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(path))?;
    if certs.is_empty() {
        return Err(ListenError::Pem {
            path: path.to_path_buf(),
            detail: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// rustls settings: TLS 1.2+ (rustls' safe defaults), the board's
/// certificate, and a client certificate signed by `client_ca` required.
pub fn server_config(f: &TlsFiles) -> Result<rustls::ServerConfig, ListenError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&f.cert)?;
    // The key is a secret like the Varde keys: refused if others can read it.
    varde_bus::keys::check_private(&f.key)?;
    let key = PrivateKeyDer::from_pem_file(&f.key).map_err(pem_err(&f.key))?;
    let mut roots = RootCertStore::empty();
    for ca in certs(&f.client_ca)? {
        roots.add(ca).map_err(|e| ListenError::Pem {
            path: f.client_ca.clone(),
            detail: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ListenError::Tls(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| ListenError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// TCP connections that finished a TLS handshake with a valid client
/// certificate. Handshakes run in their own tasks, so a slow or refused
/// client never holds up the next one.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, cfg: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (sock, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait, go on.
                        tracing::warn!(error = %e, "board: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "board: TLS handshake refused")
                        }
                        Err(_) => tracing::info!(%peer, "board: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ends only with the listener; nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_loopback_without_tls() {
        let tls = TlsFiles {
            cert: "c".into(),
            key: "k".into(),
            client_ca: "ca".into(),
        };
        for ok in ["127.0.0.1:8480", "[::1]:8480"] {
            check_exposure(ok.parse().unwrap(), None).unwrap();
        }
        let open: SocketAddr = "0.0.0.0:8480".parse().unwrap();
        let e = check_exposure(open, None).unwrap_err();
        assert!(e.to_string().contains("--client-ca"), "{e}");
        check_exposure(open, Some(&tls)).unwrap();
    }
}
