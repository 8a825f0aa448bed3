//! A blocking connection whose every exchange ends by a deadline, connecting included.
//!
//! The `redis` crate's sync `Connection` cannot promise that: a socket timeout is re-armed for
//! each `read` (the parser may read several times per reply), and a pipeline that fails keeps
//! reading every remaining reply, each up to the timeout — so a call to a stalled server took a
//! multiple of it. Here the crate still encodes the commands and parses the replies
//! (`redis::Parser`, `Pipeline::get_packed_pipeline`), but every read and write goes through
//! a socket wrapper that arms it with the time *left* and fails at once past it (for TLS
//! too: rustls reads and writes the same wrapper).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Instant;

use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
}

/// The time left before `deadline`, or a `TimedOut` error.
fn left(deadline: Instant) -> io::Result<std::time::Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

/// The socket armed with a deadline: every read or write waits at most the time left (TLS
/// records go through it too, so a handshake or a record split over many reads is bounded).
struct Sock {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(left(self.deadline)?))?;
        match self.stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(left(self.deadline)?))?;
        match self.stream.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plain TCP, or TLS over it.
enum Transport {
    Plain(Sock),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Sock>>),
}

impl Transport {
    fn sock(&mut self) -> &mut Sock {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => &mut t.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.flush(),
        }
    }
}

/// One connection to Redis (RESP2), authenticated and on its database.
pub(crate) struct Conn {
    transport: Transport,
    parser: redis::Parser,
}

/// TLS settings of a `rediss://` target.
#[cfg(feature = "tls")]
#[derive(Clone)]
struct Tls {
    server_name: rustls::pki_types::ServerName<'static>,
    config: std::sync::Arc<rustls::ClientConfig>,
}

/// Where and how to connect, parsed once from the URL.
#[derive(Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    /// `AUTH` and `SELECT` to send after connecting (already encoded), and their count.
    handshake: Vec<u8>,
    handshake_len: usize,
    #[cfg(feature = "tls")]
    tls: Option<Tls>,
}

impl std::fmt::Display for Target {
    /// `host:port` (never the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

fn invalid(message: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, message))
}

impl Target {
    /// The same credentials, database and TLS settings at another address (a cluster's other
    /// nodes).
    pub(crate) fn with_address(&self, host: &str, port: u16) -> Target {
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut target = Target {
            host: host.to_owned(),
            port,
            ..self.clone()
        };
        #[cfg(feature = "tls")]
        if let (Some(tls), Ok(name)) = (
            &mut target.tls,
            rustls::pki_types::ServerName::try_from(host.to_owned()),
        ) {
            tls.server_name = name;
        }
        target
    }

    pub(crate) fn same_address(&self, other: &Target) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// A `redis://` URL, or `rediss://` with the `tls` feature (trusting Mozilla's roots and
    /// the PEM certificates in `ca_file`, if any); Unix sockets are refused.
    pub(crate) fn parse(url: &str, ca_file: Option<&std::path::Path>) -> RedisResult<Target> {
        #[cfg(not(feature = "tls"))]
        let _ = ca_file;
        // The `redis` crate parses `rediss://` only with its own TLS features (not used: the
        // TLS here is this crate's), so the scheme is read here and the rest parsed as redis://.
        let (url, tls) = match url.strip_prefix("rediss://") {
            Some(rest) => {
                if rest.contains("#insecure") {
                    return Err(invalid("rediss:// without certificate checks is refused"));
                }
                (format!("redis://{rest}"), true)
            }
            None => (url.to_owned(), false),
        };
        let info: ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url.as_str())?;
        let (host, port) = match info.addr {
            ConnectionAddr::Tcp(host, port) => (host, port),
            ConnectionAddr::TcpTls { .. } => return Err(invalid("unexpected TLS address")),
            ConnectionAddr::Unix(_) => return Err(invalid("Unix sockets are not supported")),
        };
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(invalid(
                "rediss:// needs the crate's `tls` feature (docs/redis.md)",
            ));
        }
        let mut pipe = redis::pipe();
        if let Some(password) = &info.redis.password {
            let auth = pipe.cmd("AUTH");
            if let Some(user) = &info.redis.username {
                auth.arg(user);
            }
            auth.arg(password);
        }
        if info.redis.db != 0 {
            pipe.cmd("SELECT").arg(info.redis.db);
        }
        Ok(Target {
            #[cfg(feature = "tls")]
            tls: if tls {
                Some(tls_settings(&host, ca_file)?)
            } else {
                None
            },
            host,
            port,
            handshake_len: pipe.cmd_iter().count(),
            handshake: pipe.get_packed_pipeline(),
        })
    }

    fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        // The system resolver: not interruptible by the deadline (docs/redis.md).
        Ok((host, self.port).to_socket_addrs()?.collect())
    }
}

#[cfg(feature = "tls")]
fn tls_settings(host: &str, ca_file: Option<&std::path::Path>) -> RedisResult<Tls> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|_| invalid("Config::tls_ca_file: not a readable PEM file"))?;
        for cert in certs {
            let cert = cert.map_err(|_| invalid("Config::tls_ca_file: a malformed certificate"))?;
            roots
                .add(cert)
                .map_err(|_| invalid("Config::tls_ca_file: a certificate rustls refuses"))?;
        }
    }
    // ring, not aws-lc-rs (which needs cmake and a C toolchain setup at build time); its only
    // loss is post-quantum key exchange, which Redis servers (OpenSSL 3.0 on Debian) do not
    // offer either.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| invalid("no TLS protocol version"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|_| invalid("the host is not a valid TLS server name"))?;
    Ok(Tls {
        server_name,
        config: std::sync::Arc::new(config),
    })
}

impl Conn {
    /// Connects, negotiates TLS if asked and authenticates by `deadline`.
    pub(crate) fn open(target: &Target, deadline: Instant) -> RedisResult<Conn> {
        let mut last = None;
        for addr in target.addresses()? {
            match TcpStream::connect_timeout(&addr, left(deadline)?) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let sock = Sock { stream, deadline };
                    #[cfg(feature = "tls")]
                    let transport = match &target.tls {
                        Some(tls) => {
                            let conn = rustls::ClientConnection::new(
                                std::sync::Arc::clone(&tls.config),
                                tls.server_name.clone(),
                            )
                            .map_err(|e| io::Error::other(e.to_string()))?;
                            Transport::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
                        }
                        None => Transport::Plain(sock),
                    };
                    #[cfg(not(feature = "tls"))]
                    let transport = Transport::Plain(sock);
                    let mut conn = Conn {
                        transport,
                        parser: redis::Parser::new(),
                    };
                    if target.handshake_len > 0 {
                        for reply in
                            conn.exchange(&target.handshake, target.handshake_len, deadline)?
                        {
                            if let Value::ServerError(e) = reply {
                                return Err(e.into());
                            }
                        }
                    }
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
            .into())
    }

    /// Sends `packed` (`n` commands) and reads their `n` replies by `deadline`. A command's
    /// own error is its reply (`Value::ServerError`); any other error means the connection's
    /// state is unknown and it must be dropped.
    pub(crate) fn exchange(
        &mut self,
        packed: &[u8],
        n: usize,
        deadline: Instant,
    ) -> RedisResult<Vec<Value>> {
        self.transport.sock().deadline = deadline;
        self.transport.write_all(packed)?;
        self.transport.flush()?;
        let mut replies = Vec::with_capacity(n);
        while replies.len() < n {
            match self.parser.parse_value(&mut self.transport)? {
                // RESP3 push messages are never asked for on this connection; skip any.
                Value::Push { .. } => {}
                v => replies.push(v),
            }
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn urls_parse_to_tcp_targets_with_their_handshake() {
        let t = Target::parse("redis://127.0.0.1:6379/", None).unwrap();
        assert_eq!(
            (t.to_string(), t.handshake_len),
            ("127.0.0.1:6379".into(), 0)
        );
        let t = Target::parse("redis://user:secret@10.0.0.5:7000/3", None).unwrap();
        assert_eq!(t.handshake_len, 2); // AUTH user secret, SELECT 3
        assert!(!t.to_string().contains("secret"));
        #[cfg(not(feature = "tls"))]
        assert!(Target::parse("rediss://127.0.0.1:6379/", None).is_err());
        #[cfg(feature = "tls")]
        assert!(Target::parse("rediss://127.0.0.1:6379/", None).is_ok());
        assert!(Target::parse("rediss://127.0.0.1:6379/#insecure", None).is_err());
        assert!(Target::parse("redis+unix:///tmp/redis.sock", None).is_err());
        assert!(Target::parse("not a url", None).is_err());
    }
}
