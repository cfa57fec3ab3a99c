//! Failure detection on every link: heartbeats between aemp nodes, keepalives and TCP
//! options for Perl peers.
//!
//! - **Between aemp nodes** each greeting carries `heartbeat=<interval ms>,<timeout ms>` (a
//!   `key=value` pair Perl ignores). When both sides offer it, each side's writer sends
//!   `["", "aemp_ping", t]` every interval (the smaller of the two), and the other side's
//!   reader answers `["", "aemp_pong", t]` at once (the round-trip time). Each reader closes
//!   the link with `["transport_error", node, "heartbeat timeout"]` when nothing at all came
//!   from the peer for its `heartbeat_timeout`. The check lives in the reader, not on the
//!   dispatcher, and its clock stops while the reader waits for a busy dispatcher to take
//!   what it read, so a long callback never makes a live peer look dead.
//! - **With Perl peers** (no heartbeats) we write `[]` whenever nothing was written for a
//!   heartbeat interval, so there is always recent data for TCP to acknowledge, and set
//!   `TCP_USER_TIMEOUT` to `monitor_timeout`: data unacknowledged that long (a dead host, a
//!   cut network) fails the link. `SO_KEEPALIVE` is on as well, as Perl sets it.
//!
//! - **Shutting down**, a node sends `["", "aemp_bye"]` to its aemp peers after its last
//!   message, so they log the link's end as a shutdown, not a failure; the reason their
//!   monitors get is `["transport_error", node, "peer shut down"]`.
//!
//! These frames never reach the dispatcher: the reader handles them.

use std::time::{Duration, Instant};

use aemp_proto::framing::Frame;
use aemp_proto::greeting::Greeting;
use aemp_proto::handshake::HandshakeConfig;
use aemp_proto::{Message, Value};
use tokio::net::TcpStream;

use super::Limits;

/// The greeting key that offers heartbeats.
const PAIR: &str = "heartbeat";

/// The heartbeat a writer sends, answered by the peer's reader.
const PING: &str = "aemp_ping";

/// The answer to a [`PING`], echoing its timestamp.
const PONG: &str = "aemp_pong";

/// The last frame of a node that shuts down: the link's end is no failure.
const BYE: &str = "aemp_bye";

/// Heartbeats agreed with a peer.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) struct Heartbeat {
    /// How often our writer sends a ping.
    pub(super) every: Duration,
    /// How long our reader waits for anything from the peer.
    pub(super) timeout: Duration,
}

/// A heartbeat frame the reader handles itself.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Beat {
    /// A ping with the sender's timestamp (microseconds since its epoch).
    Ping(u64),
    /// Our ping's timestamp, echoed.
    Pong(u64),
    /// The peer is shutting down; nothing follows.
    Bye,
}

/// How a writer keeps the link alive.
#[derive(Clone, Copy, Debug)]
pub(super) enum Keepalive {
    /// Pings every `every` (an aemp peer); timestamps count from `epoch`.
    Heartbeat { every: Duration, epoch: Instant },
    /// `[]` after this long without writes (a Perl peer).
    Idle(Duration),
}

/// Offers heartbeats in our greeting.
pub(super) fn offer(config: &mut HandshakeConfig, limits: &Limits) {
    let value = format!(
        "{},{}",
        limits.heartbeat_interval.as_millis(),
        limits.heartbeat_timeout.as_millis()
    );
    // Digits and a comma: always a valid greeting value.
    if let Err(e) = config.add_pair(PAIR, &value) {
        tracing::error!(error = %e, "cannot offer heartbeats");
    }
}

/// The heartbeats agreed with the peer whose greeting this is, if it offered them: we send
/// at the smaller interval (and at least three times within the peer's timeout), and time
/// the peer out after our own `heartbeat_timeout`.
pub(super) fn negotiate(peer: &Greeting, limits: &Limits) -> Option<Heartbeat> {
    let (interval, timeout) = peer.pair(PAIR)??.split_once(',')?;
    let interval = Duration::from_millis(interval.trim().parse().ok()?);
    let timeout = Duration::from_millis(timeout.trim().parse().ok()?);
    if interval.is_zero() || timeout.is_zero() {
        return None;
    }
    let every = limits
        .heartbeat_interval
        .min(interval)
        .min(timeout / 3)
        .max(MIN_INTERVAL);
    Some(Heartbeat {
        every,
        timeout: limits.heartbeat_timeout,
    })
}

/// The keepalive a writer uses with a peer.
pub(super) fn keepalive(
    heartbeat: Option<Heartbeat>,
    limits: &Limits,
    epoch: Instant,
) -> Keepalive {
    match heartbeat {
        Some(hb) => Keepalive::Heartbeat {
            every: hb.every,
            epoch,
        },
        None => Keepalive::Idle(limits.heartbeat_interval),
    }
}

/// A ping stamped with the time since `epoch`.
pub(super) fn ping(epoch: Instant) -> Message {
    Message::from([Value::from(PING), Value::from_u64(micros_since(epoch))])
}

/// The answer to a ping stamped `t`.
pub(super) fn pong(t: u64) -> Message {
    Message::from([Value::from(PONG), Value::from_u64(t)])
}

/// The round trip of our ping stamped `t`, answered now.
pub(super) fn round_trip(epoch: Instant, t: u64) -> Duration {
    Duration::from_micros(micros_since(epoch).saturating_sub(t))
}

/// The goodbye of a node that shuts down.
pub(super) fn bye() -> Message {
    Message::from([Value::from(BYE)])
}

/// The heartbeat in `frame`, if it is one.
pub(super) fn beat_of(frame: &Frame) -> Option<Beat> {
    if !frame.port.is_empty() {
        return None;
    }
    match (&frame.message[..], frame.message.first()?.as_str()?) {
        ([_], BYE) => Some(Beat::Bye),
        ([_, t], PING) => Some(Beat::Ping(t.as_u64()?)),
        ([_, t], PONG) => Some(Beat::Pong(t.as_u64()?)),
        _ => None,
    }
}

/// `SO_KEEPALIVE` and, where the system has it, `TCP_USER_TIMEOUT` = `monitor_timeout`.
pub(super) fn set_socket_options(stream: &TcpStream, limits: &Limits) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    // The kernel counts keepalive times in whole seconds, at least one.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(limits.heartbeat_timeout.max(Duration::from_secs(1)))
        .with_interval(limits.heartbeat_interval.max(Duration::from_secs(1)));
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    socket.set_tcp_user_timeout(Some(limits.monitor_timeout))?;
    Ok(())
}

fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Pings are never sent more often than this, whatever the peer asks.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting(pairs: &str) -> Greeting {
        format!("aemp;1;peer;hmac_md6_64_256;cbor{pairs}")
            .parse()
            .expect("a greeting")
    }

    #[test]
    fn heartbeats_need_both_sides() {
        let limits = Limits::default();
        assert_eq!(negotiate(&greeting(""), &limits), None);
        assert_eq!(negotiate(&greeting(";provider=AE-1.30"), &limits), None);
        for bad in [
            ";heartbeat",
            ";heartbeat=",
            ";heartbeat=1000",
            ";heartbeat=x,y",
            ";heartbeat=0,10",
        ] {
            assert_eq!(negotiate(&greeting(bad), &limits), None, "{bad}");
        }
        let hb = negotiate(&greeting(";heartbeat=1000,10000"), &limits).unwrap();
        assert_eq!(hb.every, Duration::from_secs(1));
        assert_eq!(hb.timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_faster_side_sets_the_pace_within_the_peer_timeout() {
        let limits = Limits::default();
        let hb = negotiate(&greeting(";heartbeat=250,10000"), &limits).unwrap();
        assert_eq!(hb.every, Duration::from_millis(250));
        // A peer that times out after 900 ms gets pings every 300 ms.
        let hb = negotiate(&greeting(";heartbeat=5000,900"), &limits).unwrap();
        assert_eq!(hb.every, Duration::from_millis(300));
        assert_eq!(hb.timeout, limits.heartbeat_timeout);
        let hb = negotiate(&greeting(";heartbeat=1,2"), &limits).unwrap();
        assert_eq!(hb.every, MIN_INTERVAL);
    }

    #[test]
    fn our_offer_round_trips() {
        let mut config = HandshakeConfig::new("me".parse().unwrap());
        let limits = Limits::default();
        offer(&mut config, &limits);
        let hb = negotiate(&greeting(";heartbeat=1000,10000"), &limits);
        assert!(hb.is_some());
    }

    #[test]
    fn beats_are_recognised_and_nothing_else() {
        let frame = |port: &str, m: Message| Frame {
            port: port.to_owned(),
            message: m,
        };
        let epoch = Instant::now();
        assert!(matches!(
            beat_of(&frame("", ping(epoch))),
            Some(Beat::Ping(_))
        ));
        assert_eq!(beat_of(&frame("", pong(7))), Some(Beat::Pong(7)));
        assert_eq!(beat_of(&frame("", bye())), Some(Beat::Bye));
        assert_eq!(
            beat_of(&frame(
                "",
                Message::from([Value::from(BYE), Value::from(1)])
            )),
            None
        );
        assert_eq!(beat_of(&frame("", Message::empty())), None);
        assert_eq!(beat_of(&frame("p", pong(7))), None);
        assert_eq!(
            beat_of(&frame("", Message::from([Value::from(PING)]))),
            None
        );
        assert_eq!(
            beat_of(&frame(
                "",
                Message::from([Value::from("snd"), Value::from(1)])
            )),
            None
        );
        assert_eq!(
            beat_of(&frame(
                "",
                Message::from([Value::from(PONG), Value::from("x")])
            )),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn connections_get_keepalive_and_a_user_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let limits = Limits {
            monitor_timeout: Duration::from_secs(7),
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_millis(1500),
            ..Limits::default()
        };
        set_socket_options(&stream, &limits).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(7))
        );
        // Whole seconds, at least one.
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(1));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(1)
        );
    }
}
