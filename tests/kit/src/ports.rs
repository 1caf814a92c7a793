//! Free TCP ports on the loopback interface.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};

/// Ports already handed out by this process, so that two servers started by
/// one test never get the same port even if the kernel offers it twice.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the
/// port the kernel chose, close the socket.
///
/// Another process can still take the port before the server binds it; the
/// server starters retry with fresh ports when a bind fails.
///
/// # Panics
/// When no loopback socket can be bound at all (see [`try_free_port`]).
pub fn free_port() -> u16 {
    try_free_port().expect("no free TCP port on 127.0.0.1")
}

/// [`free_port`] returning an error instead of panicking.
pub fn try_free_port() -> Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding 127.0.0.1:0 to find a free port")?;
        let port = listener
            .local_addr()
            .context("reading the port of 127.0.0.1:0")?
            .port();
        drop(listener);
        let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("the kernel kept offering ports this process already handed out")
}
