//! Mailbox ports: messages are read with `recv().await` instead of a callback (Erlang and
//! Coro::MP style), with timeouts and selective receive.

use std::collections::VecDeque;
use std::time::Duration;

use aemp_proto::{Message, PortId};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::error::RecvError;
use crate::monitor::Reason;
use crate::node::Node;
use crate::port::Pattern;

/// A port whose messages queue up until read.
///
/// It is a port like any other: send to [`port`](Self::port), monitor it, kill it. Dropping
/// the mailbox kills its port normally. Messages that a selective receive passed over stay
/// queued, in order.
///
/// ```
/// use std::time::Duration;
/// use aemp::{Message, Node, Pattern, RecvError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::builder().start()?;
/// let mut mailbox = node.mailbox();
/// node.send(mailbox.port(), Message::new(vec!["later".into()]));
/// node.send(mailbox.port(), Message::new(vec!["first".into(), 1.into()]));
/// let m = mailbox.recv_matching(&Pattern::from("first"), Duration::from_secs(1)).await?;
/// assert_eq!(m[1], 1.into());
/// assert_eq!(mailbox.recv().await.expect("queued")[0], "later".into());
/// assert_eq!(mailbox.recv_timeout(Duration::from_millis(10)).await, Err(RecvError::Timeout));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Mailbox {
    node: Node,
    port: PortId,
    rx: UnboundedReceiver<Message>,
    /// Messages passed over by a selective receive, in arrival order.
    saved: VecDeque<Message>,
}

impl Node {
    /// Creates a mailbox port.
    pub fn mailbox(&self) -> Mailbox {
        let (tx, rx) = unbounded_channel();
        let port = self.port(move |msg: Message| {
            // The receiver is gone only while the mailbox is being dropped, which kills the
            // port right after; nothing is lost that anyone could read.
            let _ = tx.send(msg);
        });
        Mailbox {
            node: self.clone(),
            port,
            rx,
            saved: VecDeque::new(),
        }
    }
}

impl Mailbox {
    /// The mailbox's port ID.
    pub fn port(&self) -> &PortId {
        &self.port
    }

    /// The next message; `None` once the port is dead and the queue is empty.
    pub async fn recv(&mut self) -> Option<Message> {
        match self.saved.pop_front() {
            Some(m) => Some(m),
            None => self.rx.recv().await,
        }
    }

    /// The next message without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.saved.pop_front().or_else(|| self.rx.try_recv().ok())
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if none arrived in time, [`RecvError::Closed`] if the port died.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, RecvError> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(RecvError::Closed),
            Err(_) => Err(RecvError::Timeout),
        }
    }

    /// The first message matching `pattern`, waiting at most `timeout`; messages that do not
    /// match stay queued in order.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if none matched in time, [`RecvError::Closed`] if the port died.
    pub async fn recv_matching(
        &mut self,
        pattern: &Pattern,
        timeout: Duration,
    ) -> Result<Message, RecvError> {
        self.recv_where(|m| pattern.matches(m), timeout).await
    }

    /// The first message for which `predicate` is true, waiting at most `timeout`; others
    /// stay queued in order.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if none matched in time, [`RecvError::Closed`] if the port died.
    pub async fn recv_where(
        &mut self,
        mut predicate: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, RecvError> {
        if let Some(i) = self.saved.iter().position(&mut predicate) {
            return self.saved.remove(i).ok_or(RecvError::Closed);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if predicate(&m) => return Ok(m),
                Ok(Some(m)) => self.saved.push_back(m),
                Ok(None) => return Err(RecvError::Closed),
                Err(_) => return Err(RecvError::Timeout),
            }
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        // A mailbox port is never the node port, so the kill cannot be refused.
        let _ = self.node.kill(&self.port, Reason::normal());
    }
}
