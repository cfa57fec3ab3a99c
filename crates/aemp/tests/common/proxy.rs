//! A TCP proxy on 127.0.0.1 between two nodes, that a test can cut (both sockets destroyed
//! under the nodes) or black-hole (sockets stay open, bytes stop flowing, nothing is
//! acknowledged beyond the kernel's buffers: a hung peer or a partition, seen from TCP).
//! Included with `#[path]` by the test files that need it.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Forwards every connection made to [`addr`](Self::addr) to a target address.
pub(crate) struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    /// Bytes are not forwarded (nor read) while set.
    holes: AtomicBool,
    /// Woken to resume forwarding, and to cut.
    resume: Notify,
    cut: Notify,
}

impl Proxy {
    /// Starts a proxy to `target`.
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            holes: AtomicBool::new(false),
            resume: Notify::new(),
            cut: Notify::new(),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                tokio::spawn(pipe(inbound, outbound, s.clone()));
            }
        });
        Self { addr, state, task }
    }

    /// Where to connect to reach the target through the proxy.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Destroys every connection through the proxy now (both sides see it end); later
    /// connections are forwarded again.
    pub(crate) fn cut(&self) {
        self.state.cut.notify_waiters();
    }

    /// Stops forwarding and reading: the connections stay open, but nothing gets through.
    pub(crate) fn black_hole(&self) {
        self.state.holes.store(true, Ordering::SeqCst);
    }

    /// Forwards again after [`black_hole`](Self::black_hole).
    pub(crate) fn heal(&self) {
        self.state.holes.store(false, Ordering::SeqCst);
        self.state.resume.notify_waiters();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn pipe(a: TcpStream, b: TcpStream, state: Arc<State>) {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::select! {
        () = copy(ar, bw, state.clone()) => {}
        () = copy(br, aw, state.clone()) => {}
        () = state.cut.notified() => {}
    }
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
) {
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        wait_while_black_holed(&state).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just as the hole opened are held, as a partitioned network holds
        // unacknowledged data until it heals.
        wait_while_black_holed(&state).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_while_black_holed(state: &State) {
    while state.holes.load(Ordering::SeqCst) {
        let resumed = state.resume.notified();
        if !state.holes.load(Ordering::SeqCst) {
            break;
        }
        resumed.await;
    }
}
