//! One module per group of subcommands.

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod demo;
pub(crate) mod net;
pub(crate) mod profile;
