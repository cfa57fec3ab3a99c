//! aemp: AnyEvent::MP for Rust.
//!
//! The runtime (nodes, ports, monitors, spawn, transport) is being built on top of
//! [`aemp_proto`], which holds the wire protocol. Until it lands, this crate re-exports the
//! protocol types that programs already use.

#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub use aemp_proto::{Message, NodeId, PortId, Value};
