//! Campaigns close the loop on a warning. The CSIRT opens one for an
//! advisory or alert with its target orgs, a deadline and a reminder
//! interval; each target gets a `campaign` envelope sealed to it alone;
//! each org answers with `status` envelopes sealed to the CSIRT alone
//! (`delivered` from its bridge, the rest from its people); orgs with no
//! answer after the interval get a reminder, and past the deadline the
//! escalation list names the orgs not done.
//!
//! Everything lives in one SQLite file ([`store`]), so a restart resumes
//! where it stopped; every envelope the desk sends has an id derived from a
//! secret of the store and the step it is for, so sending again after a
//! crash is the same envelope and readers keep one ([`desk`]).

pub mod desk;
pub mod picture;
pub mod store;

pub use desk::{Desk, OpenSpec};
pub use picture::{Picture, Row, Standing};
pub use store::{CampaignRecord, Store, StoreError};
