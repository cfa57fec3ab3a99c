//! Handshake tests: every auth method × framing in memory, and one test per refusal.

use std::time::{Duration, Instant};

use super::*;
use crate::fuzzing::HandshakePair;

fn config(node: &str) -> HandshakeConfig {
    let mut c = HandshakeConfig::new(node.parse().unwrap());
    c.secret = Some(Secret::new("shared secret"));
    c
}

fn only(node: &str, method: AuthMethod, framing: Framing) -> HandshakeConfig {
    let mut c = config(node);
    c.auth_offer = vec![method];
    c.auth_accept = vec![method];
    c.framings = vec![framing];
    if method.needs_tls() {
        c.tls = TlsMode::Enabled;
    }
    c
}

fn expect_established(pair: &HandshakePair) -> (&Session, &Session) {
    assert_eq!(pair.a.error, None, "side a failed");
    assert_eq!(pair.b.error, None, "side b failed");
    (
        pair.a.session.as_ref().expect("a established"),
        pair.b.session.as_ref().expect("b established"),
    )
}

#[test]
fn every_method_and_framing_completes_whole_and_byte_by_byte() {
    let now = Instant::now();
    for method in AuthMethod::ALL {
        for framing in [Framing::Json, Framing::Cbor] {
            for chunk in [usize::MAX, 1, 7] {
                let mut pair = HandshakePair::new(
                    &only("a", method, framing),
                    &only("b", method, framing),
                    now,
                );
                pair.chunk = chunk;
                pair.drive();
                let (a, b) = expect_established(&pair);
                for (s, peer) in [(a, "b"), (b, "a")] {
                    assert_eq!(s.peer.as_str(), peer);
                    assert_eq!(s.auth, method, "{method} {framing} chunk {chunk}");
                    assert_eq!((s.send_framing, s.recv_framing), (framing, framing));
                    let tls = if method.needs_tls() {
                        TlsMode::Enabled
                    } else {
                        TlsMode::Disabled
                    };
                    assert_eq!(s.tls, tls);
                }
                assert_eq!(pair.a.tls_role.is_some(), method.needs_tls());
            }
        }
    }
}

#[test]
fn defaults_pick_cbor_and_hmac_between_aemp_nodes() {
    let mut pair = HandshakePair::new(&config("a"), &config("b"), Instant::now());
    pair.drive();
    let (a, b) = expect_established(&pair);
    assert_eq!(a.auth, AuthMethod::HmacMd6);
    assert_eq!(b.send_framing, Framing::Cbor);
}

#[test]
fn tls_roles_follow_the_nonce_order_both_ways() {
    let mut a = config("a");
    a.tls = TlsMode::Enabled;
    let mut b = config("b");
    b.tls = TlsMode::Enabled;
    for (na, nb, a_role) in [
        ([1; 66], [2; 66], TlsRole::Client),
        ([2; 66], [1; 66], TlsRole::Server),
    ] {
        let mut pair = HandshakePair::with_nonces(&a, &b, na, nb, Instant::now());
        pair.drive();
        let (sa, _) = expect_established(&pair);
        assert_eq!(sa.auth, AuthMethod::TlsMd6);
        assert_eq!(pair.a.tls_role, Some(a_role));
    }
}

#[test]
fn tls_on_one_side_only_falls_back_to_hmac() {
    let mut a = config("a");
    a.tls = TlsMode::Enabled;
    let mut pair = HandshakePair::new(&a, &config("b"), Instant::now());
    pair.drive();
    let (sa, sb) = expect_established(&pair);
    assert_eq!(
        (sa.auth, sb.auth),
        (AuthMethod::HmacMd6, AuthMethod::HmacMd6)
    );
    assert_eq!(sa.tls, TlsMode::Disabled);
    assert_eq!(pair.a.tls_role, None);
}

#[test]
fn a_certificate_puts_tls_methods_first_in_the_greeting() {
    let mut c = config("a");
    c.auth_accept = vec![AuthMethod::HmacMd6, AuthMethod::TlsMd6];
    c.tls = TlsMode::Enabled;
    let hs = Handshake::new(&c, Nonce::from_random(&[0; 66]), None, Instant::now());
    let g: Greeting = hs.own_greeting().parse().unwrap();
    assert_eq!(g.auth, ["tls_md6_64_256", "hmac_md6_64_256"]);
    assert!(g.wants_tls());
}

#[test]
fn greeting_carries_peeraddr_and_extra_pairs() {
    let mut c = config("a");
    c.add_pair("role", "test").unwrap();
    assert!(c.add_pair("bad;key", "v").is_err());
    assert!(c.add_pair("k", "v;x").is_err());
    let addr: SocketAddr = "[::1]:4040".parse().unwrap();
    let hs = Handshake::new(&c, Nonce::from_random(&[0; 66]), Some(addr), Instant::now());
    let g: Greeting = hs.own_greeting().parse().unwrap();
    assert_eq!(g.pair("peeraddr"), Some(Some("[::1]:4040")));
    assert_eq!(g.pair("role"), Some(Some("test")));
    assert!(g.pair("provider").is_some());
    assert_eq!(g.framings, ["cbor", "json"]);
}

#[test]
fn mismatched_secrets_fail_on_both_sides() {
    let mut b = config("b");
    b.secret = Some(Secret::new("other secret"));
    let mut pair = HandshakePair::new(&config("a"), &b, Instant::now());
    pair.drive();
    for side in [&pair.a, &pair.b] {
        assert!(side.session.is_none());
        assert_eq!(
            side.error,
            Some(HandshakeError::AuthFailed {
                method: AuthMethod::HmacMd6
            })
        );
    }
}

#[test]
fn no_secret_and_no_certificate_refuses() {
    let mut a = config("a");
    a.secret = None;
    let mut pair = HandshakePair::new(&a, &config("b"), Instant::now());
    pair.drive();
    assert_eq!(pair.a.error, Some(HandshakeError::NoCredentials));
    assert!(pair.b.session.is_none());
}

#[test]
fn no_common_framing() {
    let mut a = config("a");
    a.framings = vec![Framing::Json];
    let mut b = config("b");
    b.framings = vec![Framing::Cbor];
    let mut pair = HandshakePair::new(&a, &b, Instant::now());
    pair.drive();
    assert_eq!(
        pair.a.error,
        Some(HandshakeError::NoCommonFraming {
            offered: "cbor".to_owned()
        })
    );
}

#[test]
fn no_common_auth() {
    let mut a = config("a");
    a.auth_offer = vec![AuthMethod::Cleartext];
    let mut pair = HandshakePair::new(&a, &config("b"), Instant::now());
    pair.drive();
    assert_eq!(
        pair.a.error,
        Some(HandshakeError::NoCommonAuth {
            offered: "tls_md6_64_256,hmac_md6_64_256".to_owned()
        })
    );
}

#[test]
fn refusing_the_peer_ends_the_handshake() {
    let mut pair = HandshakePair::new(&config("a"), &config("b"), Instant::now());
    pair.b.approve = false;
    pair.drive();
    assert_eq!(
        pair.b.error,
        Some(HandshakeError::Refused {
            reason: "not approved".to_owned()
        })
    );
    assert!(pair.a.session.is_none());
}

/// A machine for node "us" with the default config, and the time it started.
fn us() -> (Handshake, Instant) {
    let now = Instant::now();
    (
        Handshake::new(&config("us"), Nonce::from_random(&[7; 66]), None, now),
        now,
    )
}

fn feed(hs: &mut Handshake, bytes: &[u8], now: Instant) -> Result<(), HandshakeError> {
    hs.handle_input(bytes, now)
}

#[test]
fn echo_of_our_own_greeting_is_refused() {
    let (mut hs, now) = us();
    let ours = hs.poll_transmit().unwrap();
    assert_eq!(feed(&mut hs, &ours, now), Err(HandshakeError::EchoAttack));
}

#[test]
fn our_own_node_id_is_refused() {
    let (mut hs, now) = us();
    assert_eq!(
        feed(&mut hs, b"aemp;1;us;hmac_md6_64_256;json\nNONCE\n", now),
        Err(HandshakeError::SelfConnection)
    );
}

#[test]
fn wrong_protocol_version_and_dataconn() {
    let (mut hs, now) = us();
    assert_eq!(
        feed(&mut hs, b"http;1;x;a;json\n", now),
        Err(HandshakeError::WrongProtocol { got: "http".into() })
    );
    let (mut hs, now) = us();
    assert_eq!(
        feed(&mut hs, b"aemp-dataconn;1;x;a;json\n", now),
        Err(HandshakeError::UnsupportedProtocol {
            got: "aemp-dataconn".into()
        })
    );
    let (mut hs, now) = us();
    assert_eq!(
        feed(&mut hs, b"aemp;2;x;a;json\n", now),
        Err(HandshakeError::VersionMismatch { got: "2".into() })
    );
}

#[test]
fn malformed_lines() {
    let (mut hs, now) = us();
    assert!(matches!(
        feed(&mut hs, b"aemp;1;x\n", now),
        Err(HandshakeError::Malformed(GreetingError::TooFewFields))
    ));
    let (mut hs, now) = us();
    assert_eq!(
        feed(&mut hs, b"aemp;1;\xff;a;json\n", now),
        Err(HandshakeError::NotUtf8)
    );
}

#[test]
fn a_line_over_4_kib_is_refused_before_it_ends() {
    let (mut hs, now) = us();
    assert_eq!(feed(&mut hs, &[b'a'; MAX_LINE], now), Ok(()));
    assert_eq!(
        feed(&mut hs, b"a", now),
        Err(HandshakeError::LineTooLong { max: MAX_LINE })
    );
}

#[test]
fn crlf_line_ends_are_accepted() {
    let (mut hs, now) = us();
    feed(
        &mut hs,
        b"aemp;1;peer;hmac_md6_64_256;json\r\nNONCE\r\n",
        now,
    )
    .unwrap();
    assert!(
        matches!(hs.poll_event(), Some(Event::PeerGreeting { node }) if node.as_str() == "peer")
    );
}

#[test]
fn timeout_fails_the_handshake_and_the_error_sticks() {
    let (mut hs, now) = us();
    assert_eq!(hs.poll_timeout(), Some(now + DEFAULT_TIMEOUT));
    assert_eq!(hs.handle_timeout(now + Duration::from_secs(29)), Ok(()));
    let late = now + DEFAULT_TIMEOUT;
    assert_eq!(hs.handle_timeout(late), Err(HandshakeError::Timeout));
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(feed(&mut hs, b"x", now), Err(HandshakeError::Timeout));
    assert_eq!(hs.accept_peer(now), Err(HandshakeError::Timeout));
}

#[test]
fn calls_in_the_wrong_state_are_errors_not_panics() {
    let (mut hs, now) = us();
    assert_eq!(
        hs.accept_peer(now),
        Err(HandshakeError::InvalidState {
            operation: "accept_peer"
        })
    );
    let (mut hs, now) = us();
    assert_eq!(
        hs.tls_established(now),
        Err(HandshakeError::InvalidState {
            operation: "tls_established"
        })
    );
}

/// Drives `us` through the greeting of a scripted peer "peer" and returns the transcript.
fn greeted(us_config: &HandshakeConfig, peer_line1: &str) -> (Handshake, Instant, Transcript) {
    let now = Instant::now();
    let mut hs = Handshake::new(us_config, Nonce::from_random(&[7; 66]), None, now);
    let hello = hs.poll_transmit().unwrap();
    let hello = std::str::from_utf8(&hello).unwrap();
    let (own1, own2) = hello.trim_end().split_once('\n').unwrap();
    let transcript = Transcript::new(own1, own2, peer_line1, "PEERNONCE");
    feed(
        &mut hs,
        format!("{peer_line1}\nPEERNONCE\n").as_bytes(),
        now,
    )
    .unwrap();
    assert!(matches!(hs.poll_event(), Some(Event::PeerGreeting { .. })));
    hs.accept_peer(now).unwrap();
    (hs, now, transcript)
}

#[test]
fn methods_outside_our_accept_list_are_refused() {
    let peer = "aemp;1;peer;hmac_md6_64_256;json";
    let (mut hs, now, t) = greeted(&config("us"), peer);
    let token = AuthMethod::Cleartext
        .token(t.peer(), Some(&Secret::new("shared secret")), false)
        .unwrap();
    assert_eq!(
        feed(&mut hs, format!("cleartext;{token};json\n").as_bytes(), now),
        Err(HandshakeError::AuthMethodNotAccepted {
            method: AuthMethod::Cleartext
        })
    );
    let (mut hs, now, _) = greeted(&config("us"), peer);
    assert_eq!(
        feed(&mut hs, b"tls_anon;;json\n", now),
        Err(HandshakeError::AuthMethodNotAccepted {
            method: AuthMethod::TlsAnon
        })
    );
}

#[test]
fn cleartext_is_accepted_when_configured() {
    let mut c = config("us");
    c.auth_accept.push(AuthMethod::Cleartext);
    let (mut hs, now, _) = greeted(&c, "aemp;1;peer;hmac_md6_64_256;json");
    let hex = crate::auth::hex(b"shared secret");
    feed(&mut hs, format!("cleartext;{hex};json\n").as_bytes(), now).unwrap();
    assert!(hs.is_established());
}

#[test]
fn tls_methods_without_tls_never_verify() {
    let mut c = config("us");
    c.auth_accept = AuthMethod::ALL.to_vec();
    let (mut hs, now, t) = greeted(&c, "aemp;1;peer;hmac_md6_64_256;json");
    let token = AuthMethod::TlsMd6.token(t.peer(), None, true).unwrap();
    assert_eq!(
        feed(
            &mut hs,
            format!("tls_md6_64_256;{token};json\n").as_bytes(),
            now
        ),
        Err(HandshakeError::AuthFailed {
            method: AuthMethod::TlsMd6
        })
    );
}

#[test]
fn unknown_method_and_unusable_framing() {
    let (mut hs, now, _) = greeted(&config("us"), "aemp;1;peer;hmac_md6_64_256;json");
    assert_eq!(
        feed(&mut hs, b"md5;00;json\n", now),
        Err(HandshakeError::UnknownAuthMethod { got: "md5".into() })
    );
    let (mut hs, now, t) = greeted(&config("us"), "aemp;1;peer;hmac_md6_64_256;json");
    let secret = Secret::new("shared secret");
    let token = AuthMethod::HmacMd6
        .token(t.peer(), Some(&secret), false)
        .unwrap();
    assert_eq!(
        feed(
            &mut hs,
            format!("hmac_md6_64_256;{token};storable\n").as_bytes(),
            now
        ),
        Err(HandshakeError::UnusableFraming {
            got: "storable".into()
        })
    );
}

#[test]
fn data_after_the_auth_line_is_handed_back() {
    let (mut hs, now, t) = greeted(&config("us"), "aemp;1;peer;hmac_md6_64_256;json");
    let secret = Secret::new("shared secret");
    let token = AuthMethod::HmacMd6
        .token(t.peer(), Some(&secret), false)
        .unwrap();
    let line = format!("hmac_md6_64_256;{token};json\n[\"port\",1][]");
    feed(&mut hs, line.as_bytes(), now).unwrap();
    let Some(Event::Established(session)) = hs.poll_event() else {
        panic!("not established");
    };
    assert_eq!(session.recv_framing, Framing::Json);
    assert_eq!(session.send_framing, Framing::Json);
    assert_eq!(&hs.take_buffered()[..], b"[\"port\",1][]");
    // Our auth line went out after the greeting.
    let auth = hs.poll_transmit().unwrap();
    assert!(auth.starts_with(b"hmac_md6_64_256;"));
    assert_eq!(hs.poll_timeout(), None);
}
