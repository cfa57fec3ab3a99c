//! The four forms of `mon`, `mon_guard`, and guards: dropping a monitor's guard stops the
//! monitoring.
//!
//! Run it with `cargo run -p aemp --example monitors`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `mon` and `mon_guard`):
//!
//! ```perl
//! $guard = mon $port, $cb->(@reason)
//! $guard = mon $port, $rcvport
//! $guard = mon $port
//! $guard = mon $port, $rcvport, @msg
//!
//! # Example: call a given callback when $port is killed.
//! mon $port, sub { warn "port died because of <@_>\n" };
//!
//! # Example: kill ourselves when $port is killed abnormally.
//! mon $port;
//!
//! # Example: send us a restart message when another $port is killed.
//! mon $port, $self => "restart";
//!
//! $guard = mon_guard $port, $ref, $ref...
//!
//! $port->rcv (start => sub {
//!    my $timer; $timer = mon_guard $port, AE::timer 1, 1, sub {
//!       undef $timer if 0.9 < rand;
//!    });
//! });
//! ```
//!
//! Differences from the Perl:
//!
//! - The four forms are four functions: `mon` (callback), `mon_link` (`mon $port, $rcvport`),
//!   `mon_self` (`mon $port`, only inside a port's code) and `mon_send` (`mon $port,
//!   $rcvport, @msg`).
//! - Perl returns a guard only when the caller keeps the result (`defined wantarray`). Every
//!   Rust form returns a `MonitorGuard` that removes the monitor when dropped; `.detach()`
//!   keeps the monitor without a guard (the Perl void-context call).
//! - The `mon_guard` example's `AE::timer` becomes a tokio task that sends `tick` messages to
//!   the port; it is stopped when the `Ticker` value holding it is dropped. The random
//!   `undef $timer if 0.9 < rand` becomes a deterministic "after three ticks".

use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aemp::prelude::*;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next, report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    Node::builder().id("monitors").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // mon $port, sub { warn "port died because of <@_>\n" };
    let port1 = new_port();
    rcv(&port1, "work", |_: Message| ())?;
    mon(&port1, report(&tx, "mon callback")).detach();
    kil(&port1, vec![Value::from("error"), Value::from("disk full")])?;
    assert_eq!(
        next(&mut rx).await?,
        ("mon callback", msg!["error", "disk full"])
    );
    // The callback is also invoked on a normal kill, with no reason.
    let port1b = new_port();
    rcv(&port1b, "work", |_: Message| ())?;
    mon(&port1b, report(&tx, "mon callback")).detach();
    kil(&port1b, Reason::normal())?;
    assert_eq!(next(&mut rx).await?, ("mon callback", msg![]));

    // mon $port, $rcvport: kill $rcvport with the same reason, iff there is a reason.
    let (port2, rcvport) = (new_port(), new_port());
    rcv(&port2, "work", |_: Message| ())?;
    let t = tx.clone();
    rcv(&rcvport, "ping", move |msg: Message| {
        let _ = t.send(("rcvport alive", msg));
    })?;
    mon(&rcvport, report(&tx, "rcvport died")).detach();
    mon_link(&port2, &rcvport).detach();
    mon(&port2, report(&tx, "port2 died")).detach();
    // A normal kill: nothing happens to $rcvport.
    kil(&port2, Reason::normal())?;
    assert_eq!(next(&mut rx).await?, ("port2 died", msg![]));
    snd(&rcvport, msg!["ping"]);
    assert_eq!(next(&mut rx).await?, ("rcvport alive", msg!["ping"]));
    // An abnormal kill: $rcvport dies with the same reason.
    let port2b = new_port();
    rcv(&port2b, "work", |_: Message| ())?;
    mon_link(&port2b, &rcvport).detach();
    kil(&port2b, vec![Value::from("linked"), Value::from(7)])?;
    assert_eq!(next(&mut rx).await?, ("rcvport died", msg!["linked", 7]));

    // mon $port;  -- kill ourselves ($SELF) when $port is killed abnormally.
    // Only meaningful inside a port's code, where there is a $SELF.
    let port3 = new_port();
    rcv(&port3, "work", |_: Message| ())?;
    let watcher = port(|msg: Message| -> Result<(), Box<dyn Error>> {
        let target: PortId = msg.decode_element(1)?;
        mon_self(&target)?.detach();
        Ok(())
    });
    mon(&watcher, report(&tx, "watcher died")).detach();
    snd(&watcher, msg!["watch", port3.to_string()]);
    kil(&port3, vec![Value::from("die"), Value::from("oops")])?;
    assert_eq!(next(&mut rx).await?, ("watcher died", msg!["die", "oops"]));
    // Outside any port's code there is no $SELF, so this form is refused.
    assert_eq!(
        mon_self(&port3).map(MonitorGuard::detach),
        Err(PortError::NoCurrentPort)
    );

    // mon $port, $self => "restart";  -- send @msg, @reason on death (also a normal one).
    let supervisor = port(forward(&tx, "supervisor"));
    let port4 = new_port();
    rcv(&port4, "work", |_: Message| ())?;
    mon_send(&port4, &supervisor, msg!["restart"]).detach();
    kil(&port4, vec![Value::from("crashed")])?;
    assert_eq!(
        next(&mut rx).await?,
        ("supervisor", msg!["restart", "crashed"])
    );
    let port4b = new_port();
    rcv(&port4b, "work", |_: Message| ())?;
    mon_send(&port4b, &supervisor, msg!["restart"]).detach();
    kil(&port4b, Reason::normal())?;
    assert_eq!(next(&mut rx).await?, ("supervisor", msg!["restart"]));

    // Dropping the guard stops the monitoring: `undef $guard`.
    let port5 = new_port();
    rcv(&port5, "work", |_: Message| ())?;
    let guard = mon(&port5, report(&tx, "dropped guard fired"));
    drop(guard);
    mon(&port5, report(&tx, "kept monitor")).detach();
    kil(&port5, vec![Value::from("bye")])?;
    // Monitors fire in the order they were added: the dropped one would have come first.
    assert_eq!(next(&mut rx).await?, ("kept monitor", msg!["bye"]));

    // Monitoring a port that does not exist (any more) reports that at once.
    mon(&port5, report(&tx, "dead port")).detach();
    let (who, reason) = next(&mut rx).await?;
    assert_eq!(who, "dead port");
    assert_eq!(reason[0], Value::from("no_such_port"));

    // $port->rcv (start => sub {
    //    my $timer; $timer = mon_guard $port, AE::timer 1, 1, sub {
    //       undef $timer if 0.9 < rand;
    //    });
    // });
    let port6 = new_port();
    let timer: Arc<Mutex<Option<MonitorGuard>>> = Arc::default();
    let (t, slot) = (tx.clone(), timer.clone());
    rcv(&port6, "start", move |_: Message| {
        let ticker = Ticker::start(&SELF(), t.clone());
        *lock(&slot) = Some(mon_guard(&SELF(), ticker));
    })?;
    let (t, slot) = (tx.clone(), timer.clone());
    let mut ticks = 0;
    rcv(&port6, "tick", move |msg: Message| {
        let mut timer = lock(&slot);
        if timer.is_some() {
            ticks += 1;
            let _ = t.send(("tick", msg));
            if ticks == 3 {
                // undef $timer: the guard goes, the monitor with it, and so the ticker.
                *timer = None;
            }
        }
    })?;
    snd(&port6, msg!["start"]);
    for _ in 0..3 {
        assert_eq!(next(&mut rx).await?, ("tick", msg!["tick"]));
    }
    assert_eq!(next(&mut rx).await?, ("ticker dropped", msg![]));

    // Started again, the ticker now lives until the port is killed.
    snd(&port6, msg!["start"]);
    assert_eq!(next(&mut rx).await?, ("tick", msg!["tick"]));
    kil(&port6, Reason::normal())?;
    // Ticks already on their way may still be reported; the ticker drop must follow.
    loop {
        match next(&mut rx).await? {
            ("tick", _) => continue,
            event => {
                assert_eq!(event, ("ticker dropped", msg![]));
                break;
            }
        }
    }

    println!("monitors: all assertions passed");
    Ok(())
}

/// A periodic timer that sends `tick` to a port until dropped (`AE::timer 1, 1, ...`).
struct Ticker {
    task: tokio::task::JoinHandle<()>,
    events: UnboundedSender<Event>,
}

impl Ticker {
    fn start(port: &PortId, events: UnboundedSender<Event>) -> Self {
        let node = node();
        let port = port.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(20));
            every.tick().await; // the first tick is immediate
            loop {
                every.tick().await;
                node.send(&port, msg!["tick"]);
            }
        });
        Self { task, events }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.events.send(("ticker dropped", msg![]));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
