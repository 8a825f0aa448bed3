//! A blocking connection whose every exchange ends by a deadline, connecting included.
//!
//! The `redis` crate's sync `Connection` cannot promise that: a socket timeout is re-armed for
//! each `read` (the parser may read several times per reply), and a pipeline that fails keeps
//! reading every remaining reply, each up to the timeout — so a call to a stalled server took a
//! multiple of it. Here the crate still encodes the commands and parses the replies
//! (`redis::Parser`, `Pipeline::get_packed_pipeline`), but every read and write goes through
//! [`Deadline`], which arms the socket with the time *left* and fails at once past it.

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

/// The socket seen through a deadline: every read or write waits at most the time left.
struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(left(self.deadline)?))?;
        match (&*self.stream).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        }
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(left(self.deadline)?))?;
        match (&*self.stream).write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One TCP connection to Redis (RESP2), authenticated and on its database.
pub(crate) struct Conn {
    stream: TcpStream,
    parser: redis::Parser,
}

/// Where and how to connect, parsed once from the URL.
#[derive(Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    /// `AUTH` and `SELECT` to send after connecting (already encoded), and their count.
    handshake: Vec<u8>,
    handshake_len: usize,
}

impl std::fmt::Display for Target {
    /// `host:port` (never the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Target {
    /// The same credentials and database at another address (a cluster's other nodes).
    pub(crate) fn with_address(&self, host: &str, port: u16) -> Target {
        Target {
            host: host.to_owned(),
            port,
            ..self.clone()
        }
    }

    pub(crate) fn same_address(&self, other: &Target) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// A `redis://` URL (TLS URLs are refused: see docs/redis.md).
    pub(crate) fn parse(url: &str) -> RedisResult<Target> {
        let info: ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)?;
        let ConnectionAddr::Tcp(host, port) = info.addr else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "only redis://host:port URLs (TCP without TLS) are supported by the blocking \
                 client",
            )));
        };
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

impl Conn {
    /// Connects and authenticates by `deadline`.
    pub(crate) fn open(target: &Target, deadline: Instant) -> RedisResult<Conn> {
        let mut last = None;
        for addr in target.addresses()? {
            match TcpStream::connect_timeout(&addr, left(deadline)?) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let mut conn = Conn {
                        stream,
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
        let mut io = Deadline {
            stream: &self.stream,
            deadline,
        };
        io.write_all(packed)?;
        let mut replies = Vec::with_capacity(n);
        while replies.len() < n {
            match self.parser.parse_value(&mut io)? {
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
        let t = Target::parse("redis://127.0.0.1:6379/").unwrap();
        assert_eq!(
            (t.to_string(), t.handshake_len),
            ("127.0.0.1:6379".into(), 0)
        );
        let t = Target::parse("redis://user:secret@10.0.0.5:7000/3").unwrap();
        assert_eq!(t.handshake_len, 2); // AUTH user secret, SELECT 3
        assert!(!t.to_string().contains("secret"));
        assert!(Target::parse("rediss://127.0.0.1:6379/").is_err());
        assert!(Target::parse("redis+unix:///tmp/redis.sock").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
