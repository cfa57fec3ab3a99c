//! The binary's memory allocator: mimalloc instead of the system's.
//!
//! A node's reader allocates every inbound message and its dispatcher frees it, on another
//! thread, in arrival order. glibc's malloc returns the freed top of the reader's arena to the
//! kernel whenever the dispatcher catches up and takes fresh pages again on the next burst;
//! in `aemp bench remote` with 1 KiB messages most of the receiver's page faults came from
//! that. mimalloc frees across threads into the owning page and keeps its pages mapped.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
