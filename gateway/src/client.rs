//! A small HTTP/1.1 client over one keep-alive connection (hyper's client), for the load program
//! and the tests.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An answer: status, headers and body.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// A header's value as bytes, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .get(name)
            .map(hyper::header::HeaderValue::as_bytes)
    }

    /// A header's value as text (empty if absent or not text).
    pub fn header_str(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A failed exchange: connect, send or read (a transport error).
#[derive(Debug)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

/// One keep-alive connection to `addr`, reopened after a failure.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Client {
    /// A client for `addr`; connects on first use.
    pub const fn new(addr: SocketAddr) -> Client {
        Client { addr, sender: None }
    }

    /// Opens the connection now (useful to have many ready at once).
    pub async fn connect(&mut self) -> Result<(), TransportError> {
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| TransportError(format!("handshake: {e}")))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(())
    }

    /// Sends `method path` with the given extra headers (`X-App-Id`/`X-Shop-Id` among them, as
    /// the caller wants) and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, TransportError> {
        let result = self.exchange(method, path, headers).await;
        if result.is_err() {
            self.sender = None; // reconnect next time
        }
        result
    }

    /// `GET path` as app `app` for shop `shop`.
    pub async fn get(&mut self, path: &str, app: u64, shop: u64) -> Result<Reply, TransportError> {
        let (a, s) = (app.to_string(), shop.to_string());
        self.send("GET", path, &[("x-app-id", &a), ("x-shop-id", &s)])
            .await
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, TransportError> {
        self.connect().await?;
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| TransportError("not connected".into()))?;
        sender
            .ready()
            .await
            .map_err(|e| TransportError(format!("connection: {e}")))?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| TransportError(format!("request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| TransportError(format!("send: {e}")))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError(format!("body: {e}")))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}
