//! TLS for the transport (reference §4.5): the node's certificate bundle, the peer verifier,
//! and the byte stream a connection runs on, plain TCP or TLS over TCP.
//!
//! A node with a certificate parses its PEM once, at start, into a [`TlsConfig`]: a client
//! and a server configuration sharing one [`BundleVerifier`], so both TLS roles present our
//! certificate and require the peer's. The handshake machine picks the role from the nonces;
//! [`start`] then runs TLS over the socket, after the bytes the machine had already read.
//!
//! Everything uses the `ring` provider explicitly, never the process-wide default.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use aemp_proto::auth::AuthMethod;
use aemp_proto::handshake::{Handshake, HandshakeError, TlsRole};
use bytes::{Buf, BytesMut};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use super::NetError;

/// What a node knows about TLS: its configuration, and counts of the sessions it established.
#[derive(Default)]
pub(crate) struct Tls {
    /// Built from the node's certificate; `None` for a node without one.
    config: Option<TlsConfig>,
    /// Established sessions by our TLS role (`None`: no TLS) and the peer's auth method, so
    /// tests can see which path a connection took.
    /// A short list: there are only a few combinations.
    sessions: Mutex<Vec<(Option<TlsRole>, AuthMethod, u64)>>,
}

impl Tls {
    /// TLS with this configuration.
    pub(crate) fn new(config: Option<TlsConfig>) -> Self {
        Self {
            config,
            sessions: Mutex::default(),
        }
    }

    /// The configuration, if the node has a certificate.
    pub(crate) fn config(&self) -> Option<&TlsConfig> {
        self.config.as_ref()
    }

    /// Counts an established session.
    pub(crate) fn record(&self, role: Option<TlsRole>, auth: AuthMethod) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions
            .iter_mut()
            .find(|(r, a, _)| *r == role && *a == auth)
        {
            Some((_, _, n)) => *n += 1,
            None => sessions.push((role, auth, 1)),
        }
    }

    /// The session counts, in no particular order.
    pub(crate) fn sessions(&self) -> Vec<(Option<TlsRole>, AuthMethod, u64)> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A node's TLS configuration, built once from its certificate PEM.
pub(crate) struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    /// The name the client role sends. Names are not checked by either side.
    server_name: ServerName<'static>,
}

impl TlsConfig {
    /// Parses AEMP's `cert`: one PEM holding our certificate (the first one), its private key,
    /// and possibly more (CA) certificates. Every certificate in it is also trusted.
    ///
    /// # Errors
    ///
    /// A description of what is wrong: unparsable PEM, no certificate, no or several private
    /// keys, a key that does not belong to the first certificate.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let mut certs: Vec<CertificateDer<'static>> = Vec::new();
        let mut key: Option<PrivateKeyDer<'static>> = None;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|e| pem_problem(&e))?;
            match kind {
                SectionKind::Certificate => certs.push(CertificateDer::from(der)),
                SectionKind::PrivateKey
                | SectionKind::RsaPrivateKey
                | SectionKind::EcPrivateKey => {
                    if key.is_some() {
                        return Err("more than one private key in the PEM".to_owned());
                    }
                    key = PrivateKeyDer::from_pem(kind, der);
                }
                _ => {}
            }
        }
        if certs.is_empty() {
            return Err("no certificate in the PEM".to_owned());
        }
        let key = key.ok_or("no private key in the PEM")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(BundleVerifier::new(&certs, &provider)?);
        let problem = |e: rustls::Error| format!("unusable certificate or key: {e}");

        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(problem)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(problem)?;
        // Every connection runs one full handshake; nothing is resumed.
        client.resumption = rustls::client::Resumption::disabled();

        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(problem)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(problem)?;
        server.send_tls13_tickets = 0;

        let server_name = ServerName::try_from("aemp").map_err(|e| e.to_string())?;
        Ok(Self {
            client: Arc::new(client),
            server: Arc::new(server),
            server_name,
        })
    }
}

/// Decides whether a peer's certificate is trusted, in both TLS roles: it is iff it is
/// byte-equal to a certificate of our bundle, or chains to one of them as a trust anchor.
///
/// The first rule is needed because webpki rejects a CA certificate as an end entity, and
/// `aemp gencert` makes one self-signed CA certificate that is copied to every node. No names
/// are checked; the chain check is [`WebPkiClientVerifier`]'s, which checks none.
#[derive(Debug)]
struct BundleVerifier {
    /// Every certificate of our PEM, for the byte-equality rule.
    bundle: Vec<CertificateDer<'static>>,
    /// The chain check, with every certificate of our PEM as a trust anchor.
    chain: Arc<dyn ClientCertVerifier>,
    /// The ring provider's signature algorithms, for the handshake signatures.
    algorithms: WebPkiSupportedAlgorithms,
}

impl BundleVerifier {
    fn new(
        bundle: &[CertificateDer<'static>],
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(bundle.iter().cloned());
        if unusable > 0 {
            return Err(format!(
                "{unusable} certificate(s) in the PEM cannot be parsed"
            ));
        }
        let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("cannot use the PEM's certificates as trust anchors: {e}"))?;
        Ok(Self {
            bundle: bundle.to_vec(),
            chain,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if self
            .bundle
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Ok(());
        }
        self.chain
            .verify_client_cert(end_entity, intermediates, now)
            .map(|_| ())
    }
}

impl ClientCertVerifier for BundleVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Runs TLS in `role` over `stream` for the handshake `hs` asked for it with
/// [`Event::StartTls`](aemp_proto::handshake::Event::StartTls), and tells `hs` once it is up.
/// The TLS handshake counts against the handshake's deadline.
///
/// # Errors
///
/// [`NetError::Tls`] if TLS fails or this node has no certificate, a handshake timeout.
pub(crate) async fn start(
    stream: Stream,
    hs: &mut Handshake,
    config: Option<&TlsConfig>,
    role: TlsRole,
) -> Result<Stream, NetError> {
    let (Stream::Plain(tcp), Some(config)) = (stream, config) else {
        return Err(NetError::Tls(
            "TLS requested on a connection without a certificate or already in TLS".to_owned(),
        ));
    };
    // The bytes the machine read past the peer's nonce line are the start of the TLS stream
    // (a Perl peer may send its ClientHello right behind its nonce).
    let io = Prefixed {
        head: hs.take_buffered(),
        io: tcp,
    };
    let handshake = async {
        match role {
            TlsRole::Client => TlsConnector::from(config.client.clone())
                .connect(config.server_name.clone(), io)
                .await
                .map(TlsStream::from),
            TlsRole::Server => TlsAcceptor::from(config.server.clone())
                .accept(io)
                .await
                .map(TlsStream::from),
        }
    };
    let deadline = hs
        .poll_timeout()
        .map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
    let tls = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            hs.handle_timeout(Instant::now())?;
            return Err(HandshakeError::Timeout.into());
        }
    };
    tracing::debug!(?role, "TLS established");
    hs.tls_established(Instant::now())?;
    Ok(Stream::Tls(Box::new(tls)))
}

impl From<io::Error> for NetError {
    /// An I/O error, or a TLS error that the TLS stream reported as one.
    fn from(e: io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Self::Tls(describe(tls)),
            None => Self::Io(e),
        }
    }
}

/// A PEM parse error as the operator should read it.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "unparsable PEM: the {} section has no END line",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "unparsable PEM: bad section start {:?}",
            String::from_utf8_lossy(line)
        ),
        other => format!("unparsable PEM: {other}"),
    }
}

/// A TLS error as the operator should read it.
fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "the peer's certificate is neither one of nor signed by a certificate of our PEM ({e})"
        ),
        rustls::Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRequired
            | AlertDescription::UnsupportedCertificate,
        ) => format!("{e} (the peer does not trust our certificate)"),
        _ => e.to_string(),
    }
}

/// The byte stream of a connection: plain TCP until the handshake asks for TLS.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: a TLS connection is large).
    Tls(Box<TlsStream<Prefixed>>),
}

/// The reading half of a [`Stream`] in the data phase.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The writing half of a [`Stream`] in the data phase.
pub(crate) enum Writer {
    /// Plain TCP, shared: senders may write to an idle connection themselves
    /// (`try_write` needs only `&self`).
    Plain(Arc<tokio::net::tcp::OwnedWriteHalf>),
    /// TLS: only the writer task writes. Must be flushed: it may keep written bytes until
    /// then.
    Tls(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Stream {
    /// Splits the stream for the data phase's reader and writer tasks.
    pub(crate) fn into_split(self) -> (Reader, Writer) {
        match self {
            Self::Plain(tcp) => {
                let (rd, wr) = tcp.into_split();
                (Box::new(rd), Writer::Plain(Arc::new(wr)))
            }
            Self::Tls(tls) => {
                let (rd, wr) = tokio::io::split(*tls);
                (Box::new(rd), Writer::Tls(Box::new(wr)))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TCP stream that first yields bytes read from it before TLS started.
pub(crate) struct Prefixed {
    /// Read but not consumed yet.
    head: BytesMut,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.head.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = this.head.len().min(buf.remaining());
        buf.put_slice(&this.head[..n]);
        this.head.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
