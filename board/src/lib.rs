//! `varde board`: the CSIRT's situational picture as a read-only web page.
//!
//! - [`view`]: what is shown, read from the campaign store the hub keeps
//!   (so only what the CSIRT identity opened): the campaigns ×
//!   organisations matrix and each organisation's page.
//! - [`page`]: the HTML (escaped by maud; one small script of our own).
//! - [`server`]: routes, exports, server-sent events when the store changes.
//! - [`listen`]: loopback by default; otherwise TLS with client
//!   certificates from the CSIRT's CA, or it does not start.
//!
//! The board holds no keys and no bus connection: it reads one SQLite file
//! read-only, so whoever reaches it can see the picture but change nothing.

pub mod listen;
pub mod page;
pub mod server;
pub mod view;

pub use listen::{ListenError, TlsFiles};
pub use server::{Board, BoardConfig, BoardError};
