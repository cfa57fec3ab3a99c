//! Timers and calls: `after`, `call` (AEMP's `cal`) and `psub` (reference §2.7, §2.12–2.13).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use aemp_proto::{Message, PortId, Value};
use tokio::sync::oneshot;

use crate::dispatch::{self, Job, UserFn};
use crate::error::{CallError, PortError};
use crate::monitor::{MonitorGuard, Reason};
use crate::node::{Node, Shared};
use crate::port::Flow;

/// Cancels a timer started by [`Node::after`] or [`Node::after_fn`]. Dropping it does *not*
/// cancel the timer (AEMP timers cannot be cancelled); call [`cancel`](Self::cancel).
#[derive(Debug)]
pub struct Timer {
    handle: tokio::task::AbortHandle,
}

impl Timer {
    /// Stops the timer if it has not fired yet.
    pub fn cancel(&self) {
        self.handle.abort();
    }
}

/// How a call ends: a reply, or why there was none.
pub type CallResult = Result<Message, CallError>;

impl Node {
    /// Sends `msg` to `port` after `delay` (AEMP's `after $timeout, @msg`).
    pub fn after(&self, delay: Duration, port: &PortId, msg: impl Into<Message>) -> Timer {
        let node = self.clone();
        let port = port.clone();
        let msg = msg.into();
        let task = self.shared.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            node.send(&port, msg);
        });
        Timer {
            handle: task.abort_handle(),
        }
    }

    /// Runs `f` on the node's dispatcher after `delay`, outside any port's context (AEMP's
    /// `after $timeout, $cb`). A panic in `f` is logged.
    pub fn after_fn(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> Timer {
        let node = self.clone();
        let task = self.shared.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            node.inject(Job::User {
                port: None,
                f: Box::new(move || {
                    f();
                    Ok(())
                }),
            });
        });
        Timer {
            handle: task.abort_handle(),
        }
    }

    /// Sends `msg` with a fresh reply port appended as its last element, and calls `f` once
    /// with the first message sent to that port (AEMP's `cal`).
    ///
    /// `f` gets `Err(CallError::Timeout)` if no reply came within `timeout`, or
    /// `Err(CallError::PortDied(reason))` if `port` died first, or `Err(CallError::Shutdown)`
    /// if this node shut down first. It is called exactly once
    /// (AEMP 1.30 could call back twice, reference §2.13). It runs on the dispatcher.
    pub fn call_with(
        &self,
        port: &PortId,
        msg: impl Into<Message>,
        timeout: Option<Duration>,
        f: impl FnOnce(CallResult) + Send + 'static,
    ) -> PortId {
        /// The callback and what must be torn down once it has run.
        struct Pending {
            f: Option<Box<dyn FnOnce(CallResult) + Send>>,
            monitor: Option<MonitorGuard>,
            timer: Option<Timer>,
            /// Where shutdown finds this call, to fail it.
            registered: Option<(Weak<Shared>, u64)>,
        }
        let state = Arc::new(Mutex::new(Pending {
            f: Some(Box::new(f)),
            monitor: None,
            timer: None,
            registered: None,
        }));
        // Runs the callback once, then drops the monitor and the timer.
        let finish = |state: &Arc<Mutex<Pending>>, result: CallResult| {
            let (f, monitor, timer, registered) = {
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                (
                    s.f.take(),
                    s.monitor.take(),
                    s.timer.take(),
                    s.registered.take(),
                )
            };
            if let Some((shared, id)) = registered
                && let Some(shared) = shared.upgrade()
            {
                shared.calls.remove(id);
            }
            if let Some(timer) = timer {
                timer.cancel();
            }
            drop(monitor);
            if let Some(f) = f {
                f(result);
            }
        };
        let call_id = self.shared.next_monitor_id();
        state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .registered = Some((Arc::downgrade(&self.shared), call_id));
        let on_shutdown = state.clone();
        self.shared.calls.insert(
            call_id,
            Box::new(move || finish(&on_shutdown, Err(CallError::Shutdown))),
        );
        let on_reply = state.clone();
        let reply = self.port(move |reply: Message| {
            finish(&on_reply, Ok(reply));
            Flow::Done
        });
        let on_death = state.clone();
        let reply_port = reply.clone();
        let node = self.clone();
        let monitor = self.monitor(port, move |reason| {
            // A normal kill of the called port also means no reply will come.
            let _ = node.kill(&reply_port, Reason::normal());
            finish(&on_death, Err(CallError::PortDied(reason)));
        });
        let timer = timeout.map(|t| {
            let on_timeout = state.clone();
            let node = self.clone();
            let reply_port = reply.clone();
            self.after_fn(t, move || {
                let _ = node.kill(&reply_port, Reason::normal());
                finish(&on_timeout, Err(CallError::Timeout));
            })
        });
        {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.f.is_some() {
                s.monitor = Some(monitor);
                s.timer = timer;
            } else {
                // Already finished (the port did not exist): drop what was just set up.
                drop(s);
                if let Some(t) = timer {
                    t.cancel();
                }
            }
        }
        let mut msg = msg.into();
        msg.push(Value::String(reply.to_string()));
        self.send(port, msg);
        reply
    }

    /// [`call_with`](Self::call_with) as a future: resolves with the reply.
    ///
    /// # Errors
    ///
    /// [`CallError::Timeout`], [`CallError::PortDied`] or [`CallError::Shutdown`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use aemp::{Message, Node};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = Node::builder().start()?;
    /// // The node port answers `time` with the reply port's message plus the time.
    /// let reply = node
    ///     .call(&node.node_port(), Message::new(vec!["time".into()]), Some(Duration::from_secs(5)))
    ///     .await?;
    /// assert!(reply[0].as_f64().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<M: Into<Message>>(
        &self,
        port: &PortId,
        msg: M,
        timeout: Option<Duration>,
    ) -> impl Future<Output = CallResult> + Send + 'static + use<M> {
        let (tx, rx) = oneshot::channel();
        self.call_with(port, msg, timeout, move |result| {
            let _ = tx.send(result);
        });
        async move { rx.await.unwrap_or(Err(CallError::Shutdown)) }
    }

    /// Wraps `f` so that, whenever it is called, it runs on this node's dispatcher in the
    /// context of the port whose code is running now (AEMP's `psub`): `self_port()` is that
    /// port, and an error or panic kills it with `die`. Calls are queued in order.
    ///
    /// # Errors
    ///
    /// [`PortError::NoCurrentPort`] outside a port's code.
    pub fn psub<A, R, F>(&self, f: F) -> Result<impl FnMut(A) + Send + use<A, R, F>, PortError>
    where
        A: Send + 'static,
        R: crate::IntoFlow,
        F: FnMut(A) -> R + Send + 'static,
    {
        let key = dispatch::with_active(&self.shared, |_| dispatch::current_key())
            .flatten()
            .ok_or(PortError::NoCurrentPort)?;
        let f = Arc::new(Mutex::new(f));
        let node = self.clone();
        Ok(move |arg: A| {
            let f = f.clone();
            let run: UserFn = Box::new(move || {
                let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
                f(arg).into_flow().map(|_| ())
            });
            node.enqueue(Job::User {
                port: Some(key),
                f: run,
            });
        })
    }
}

/// Calls waiting for a reply, so shutdown can fail them ([`CallError::Shutdown`]).
#[derive(Default)]
pub(crate) struct PendingCalls(Mutex<HashMap<u64, Box<dyn FnOnce() + Send>>>);

impl PendingCalls {
    fn insert(&self, id: u64, fail: Box<dyn FnOnce() + Send>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, fail);
    }

    fn remove(&self, id: u64) {
        let fail = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        // Dropped outside the lock: it holds the call's state.
        drop(fail);
    }
}

/// Fails every call still waiting for a reply (the node is shutting down); their callbacks
/// run here, not on the (stopped) dispatcher.
pub(crate) fn fail_pending_calls(shared: &Shared) {
    let pending = std::mem::take(
        &mut *shared
            .calls
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    for (_, fail) in pending {
        fail();
    }
}
