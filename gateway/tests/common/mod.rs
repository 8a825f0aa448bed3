//! What the gateway tests share: the real gateway binary started on an ephemeral port, a real
//! HTTP upstream started by the test (its own runtime on its own thread), raw TCP helpers.
#![allow(dead_code, unreachable_pub)] // each test file uses part of it

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Channel, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

pub use tollgate_gateway::client::{Client, Reply};

type Body = BoxBody<Bytes, hyper::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// The test upstream's answer to `req`, by what its path contains:
/// - `/echo`: the request body streamed back, the request's header names in `x-saw`;
/// - `/stream`: three chunks `one\n`, `two\n`, `three\n`, 400 ms apart;
/// - `/slow`: answers after 5 s;
/// - `/status/NNN`: that status;
/// - `/hop`: sends hop-by-hop headers (`Connection: x-private`, `X-Private`, `Keep-Alive`);
/// - `/big`: 256 KiB of `x`;
/// - anything else: `ok PATH?QUERY` after the upstream's latency, the header names in `x-saw`.
async fn answer(req: Request<Incoming>, latency: Duration) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let pq = req
        .uri()
        .path_and_query()
        .map_or(String::new(), |p| p.as_str().to_owned());
    let saw: Vec<String> = req
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .collect();
    let saw = saw.join(",");
    let mut resp = if path.contains("/echo") {
        Response::new(req.into_body().boxed())
    } else if path.contains("/stream") {
        let (mut tx, body) = Channel::<Bytes, hyper::Error>::new(1);
        tokio::spawn(async move {
            for (i, chunk) in ["one\n", "two\n", "three\n"].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
                if tx
                    .send_data(Bytes::from_static(chunk.as_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Response::new(body.boxed())
    } else if path.contains("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Response::new(full("slow\n"))
    } else if let Some(code) = path.split("/status/").nth(1) {
        let mut r = Response::new(full(format!("status {code}\n")));
        *r.status_mut() = code
            .parse()
            .ok()
            .and_then(|c| hyper::StatusCode::from_u16(c).ok())
            .unwrap_or_default();
        r
    } else if path.contains("/hop") {
        let mut r = Response::new(full("hop\n"));
        r.headers_mut()
            .insert("connection", "x-private".parse().unwrap());
        r.headers_mut()
            .insert("x-private", "secret".parse().unwrap());
        r.headers_mut()
            .insert("keep-alive", "timeout=5".parse().unwrap());
        r
    } else if path.contains("/big") {
        Response::new(full(vec![b'x'; 256 * 1024]))
    } else {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        Response::new(full(format!("ok {pq}\n")))
    };
    resp.headers_mut().insert("x-saw", saw.parse().unwrap());
    resp
}

/// Starts the test upstream on 127.0.0.1 (any free port) for the rest of the test process.
pub fn upstream(latency: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| async move {
                        Ok::<_, Infallible>(answer(req, latency).await)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

/// A port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

static FILES: AtomicUsize = AtomicUsize::new(0);

/// A temporary file holding `text`, removed when dropped.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(text: &str) -> TempFile {
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("tollgate-gw-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    pub fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The built-in config with its upstream at `up`, for tests to edit.
pub fn vendors(up: SocketAddr) -> String {
    tollgate_gateway::config::VENDORS_TOML.replace("http://127.0.0.1:9000", &format!("http://{up}"))
}

/// A gateway process; killed when dropped.
pub struct Gateway {
    pub child: Child,
    lines: Receiver<String>,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub config: Option<TempFile>,
    /// The start-up lines (`listening on`, `routes: ...`).
    pub banner: Vec<String>,
}

impl Gateway {
    /// Starts the gateway with `args` (and `--port 0` unless the args listen themselves).
    pub fn start(args: &[&str]) -> Gateway {
        Gateway::spawn(args, None, None)
    }

    /// Starts the gateway on the config `text` (written to a temporary file), and `args`.
    pub fn with_config(text: &str, args: &[&str]) -> Gateway {
        let f = TempFile::new(text);
        let path = f.path().to_owned();
        let mut all = vec!["--config", path.as_str()];
        all.extend_from_slice(args);
        Gateway::spawn(&all, Some(f), None)
    }

    /// Starts the gateway with a shell prefix (e.g. `ulimit -Sn 256;`).
    pub fn with_shell(prefix: &str, args: &[&str]) -> Gateway {
        Gateway::spawn(args, None, Some(prefix))
    }

    fn spawn(args: &[&str], config: Option<TempFile>, shell: Option<&str>) -> Gateway {
        let bin = env!("CARGO_BIN_EXE_tollgate-gateway");
        let listens = args.iter().any(|a| *a == "--listen" || *a == "--port");
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        if !listens {
            all.extend(["--port".to_owned(), "0".to_owned()]);
        }
        let mut cmd = match shell {
            None => {
                let mut c = Command::new(bin);
                c.args(&all);
                c
            }
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix} exec \"$0\" \"$@\""))
                    .arg(bin)
                    .args(&all);
                c
            }
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the gateway");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx2.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(format!("stderr: {line}")).is_err() {
                    break;
                }
            }
        });
        let mut gw = Gateway {
            child,
            lines,
            addr: "127.0.0.1:1".parse().unwrap(),
            admin: None,
            config,
            banner: Vec::new(),
        };
        let mut seen = Vec::new();
        loop {
            let line = gw
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the gateway did not start: {seen:?}"));
            assert!(
                !line.starts_with("stderr: "),
                "the gateway did not start: {line}"
            );
            if let Some(a) = line.strip_prefix("listening on ") {
                gw.addr = a.parse().unwrap();
            } else if let Some(a) = line.strip_prefix("admin on ") {
                gw.admin = Some(a.parse().unwrap());
            }
            gw.banner.push(line.clone());
            if line.starts_with("routes: ") {
                return gw;
            }
            seen.push(line);
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Waits for a line starting with `prefix` (stdout; stderr lines start with `stderr: `).
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no line starting with {prefix:?}; saw {seen:?}");
    }

    /// Sends `signal` (a `kill` name such as `HUP`).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// The Prometheus text from `/metrics`.
    pub fn metrics(&self) -> String {
        let (status, body) = raw(
            self.admin.unwrap_or(self.addr),
            b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        body
    }

    /// A counter's or gauge's value (the first line starting with `name_and_labels `), 0 if
    /// absent.
    pub fn metric(&self, name_and_labels: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| {
                l.strip_prefix(name_and_labels)?
                    .strip_prefix(' ')?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    /// The resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Sends SIGTERM and returns every later stdout line.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        self.wait_output()
    }

    /// Waits for the process to exit successfully; its remaining output.
    pub fn wait_output(&mut self) -> String {
        let status = self.child.wait().expect("wait");
        let mut out = String::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push_str(&l);
            out.push('\n');
        }
        assert!(status.success(), "gateway exited with {status}: {out}");
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub async fn get(c: &mut Client, path: &str, app: u64, shop: u64) -> Reply {
    c.get(path, app, shop).await.expect("an answer")
}

/// Sends raw bytes; the status and the whole text answered until the connection closed (or
/// 10 s). Status 0 if nothing came back.
pub fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// The status of a raw request (the connection may stay open: reads the head only).
pub fn raw_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
