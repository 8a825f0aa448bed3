//! The demo's stand-in upstream: answers every request after a fixed latency with a small JSON
//! body naming what it received (method, path, query, the caller's ids). Every value is
//! written by `serde_json`, so whatever a path or header holds, the body is valid JSON.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// The JSON body for `req` (read whole).
pub async fn answer(req: Request<Incoming>, latency: Duration) -> Response<Full<Bytes>> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let body = serde_json::json!({
        "ok": true,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "app": header("x-app-id"),
        "shop": header("x-shop-id"),
    });
    // The request body is read and its length reported.
    let received = req
        .into_body()
        .collect()
        .await
        .map_or(0, |b| b.to_bytes().len());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut body = body;
    body["received_bytes"] = received.into();
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, latency: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| async move {
                Ok::<_, Infallible>(answer(req, latency).await)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `addr`.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}
