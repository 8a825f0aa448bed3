//! Whose limit a request spends: [`KeyExtractor`].
//!
//! An extractor reads the request's head ([`RequestHead`]) and returns a [`RequestKey`]: an
//! exact 128-bit key (an (app, shop) pair of ids, an IP address) or bytes that the backend folds
//! into one with its secret seed (a header value, several parts). A request whose key cannot be
//! read is refused with the extractor's [`KeyRejection`] (400 for a missing or malformed header)
//! and spends nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, Request, StatusCode, Uri};
use tollgate::key::Key;

/// The parts of a request an extractor may read, and the rest of the path after the matched
/// route's prefix.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    rest: &'a str,
}

impl<'a> RequestHead<'a> {
    /// The head of `req`, with `rest` the path after the route prefix.
    pub fn new<B>(req: &'a Request<B>, rest: &'a str) -> RequestHead<'a> {
        RequestHead {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
            rest,
        }
    }

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The extensions (axum's `ConnectInfo`, a peer `SocketAddr`, anything an earlier layer put
    /// there).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The path after the matched route's prefix, without its leading `/`: `orders/list` for
    /// `/tiktok/orders/list` on the route `/tiktok`.
    pub fn rest(&self) -> &'a str {
        self.rest
    }

    /// The one value of header `name`: `None` if it is missing or repeated.
    pub fn single_header(&self, name: &HeaderName) -> Option<&'a [u8]> {
        let mut values = self.headers.get_all(name).iter();
        let v = values.next()?;
        values.next().is_none().then(|| v.as_bytes())
    }

    /// The peer's address: axum's `ConnectInfo<SocketAddr>` (with the `axum` feature), else a
    /// `SocketAddr` extension.
    pub fn peer(&self) -> Option<SocketAddr> {
        #[cfg(feature = "axum")]
        if let Some(info) = self
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(info.0);
        }
        self.extensions.get::<SocketAddr>().copied()
    }
}

/// A request's key: exact, or bytes the backend hashes with its secret seed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestKey {
    /// An exact 128-bit key: equal keys share a limit, distinct ones never do.
    Exact(Key),
    /// Bytes folded into a 128-bit key by the backend's seeded SipHash-2-4-128.
    Bytes(Vec<u8>),
}

impl RequestKey {
    /// An (app, shop) pair, exactly.
    pub const fn pair(app: u64, shop: u64) -> RequestKey {
        RequestKey::Exact(Key::pair(app, shop))
    }

    /// An IP address, exactly (an IPv4 address as its IPv4-mapped IPv6 address).
    pub fn ip(ip: IpAddr) -> RequestKey {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        RequestKey::Exact(Key::new(u128::from(v6)))
    }

    /// Several byte strings as one key. Each part is preceded by its length, so the encoding is
    /// injective: `("ab", "c")` and `("a", "bc")` are different keys.
    pub fn parts<I, P>(parts: I) -> RequestKey
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let mut bytes = Vec::with_capacity(64);
        for p in parts {
            let p = p.as_ref();
            bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
            bytes.extend_from_slice(p);
        }
        RequestKey::Bytes(bytes)
    }

    /// The key's bytes as one part of a longer key: the exact value's 16 bytes, tagged, or the
    /// bytes, tagged differently, so an exact key and a byte key never encode alike.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RequestKey::Exact(k) => {
                out.push(0);
                out.extend_from_slice(&k.get().to_le_bytes());
            }
            RequestKey::Bytes(b) => {
                out.push(1);
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
}

/// Why a request's key could not be read: the answer the layer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyRejection {
    /// The status: 400 for the client's fault, 500 for the server's configuration.
    pub status: StatusCode,
    /// The response body, one line.
    pub message: &'static str,
}

impl KeyRejection {
    /// 400 Bad Request with `message`.
    pub const fn bad_request(message: &'static str) -> KeyRejection {
        KeyRejection {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl fmt::Display for KeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

type ExtractFn = dyn Fn(&RequestHead<'_>) -> Result<RequestKey, KeyRejection> + Send + Sync;

/// Reads a request's key. Cheap to clone.
///
/// An extractor reads the request's head ([`RequestHead`]) and returns a [`RequestKey`]: an
/// exact 128-bit key (an (app, shop) pair of ids, an IP address) or bytes that the backend
/// folds into one with its secret seed (a header value, several parts). A request whose key
/// cannot be read is answered with the extractor's [`KeyRejection`] (400 for a missing or
/// malformed header) and spends nothing.
///
/// ```
/// use tollgate_tower::{KeyExtractor, KeyRejection, RequestHead, RequestKey};
/// // ShopBase: (app, shop) from two decimal id headers, exactly.
/// let shopbase = KeyExtractor::id_pair("x-app-id", "x-shop-id");
/// // TikTok Shop: (app, shop, api), the api being the rest of the path after the route.
/// let tiktok = KeyExtractor::id_pair("x-app-id", "x-shop-id").with_rest();
/// // Per client IP (axum's ConnectInfo), per API key header, or anything at all.
/// let _by_ip = KeyExtractor::peer_ip();
/// let _by_token = KeyExtractor::header("x-api-key");
/// let by_user = KeyExtractor::from_fn(|head| {
///     let q = head.uri().query().unwrap_or("");
///     let user = q.strip_prefix("user=").ok_or(KeyRejection::bad_request("user=...?"))?;
///     Ok(RequestKey::parts([user]))
/// });
///
/// let req = http::Request::get("/tiktok/orders?user=ann")
///     .header("x-app-id", "7")
///     .header("x-shop-id", "42")
///     .body(())?;
/// let head = RequestHead::new(&req, "orders"); // on the route "/tiktok"
/// assert_eq!(shopbase.extract(&head), Ok(RequestKey::pair(7, 42)));
/// assert!(matches!(tiktok.extract(&head), Ok(RequestKey::Bytes(_))));
/// assert_eq!(by_user.extract(&head), Ok(RequestKey::parts(["ann"])));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyExtractor(Arc<ExtractFn>);

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyExtractor")
    }
}

fn header_name(name: &str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes())
        .unwrap_or_else(|_| panic!("not a valid header name: {name:?}"))
}

/// A decimal `u64` id: digits only.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl KeyExtractor {
    /// An extractor from a closure.
    pub fn from_fn<F>(f: F) -> KeyExtractor
    where
        F: Fn(&RequestHead<'_>) -> Result<RequestKey, KeyRejection> + Send + Sync + 'static,
    {
        KeyExtractor(Arc::new(f))
    }

    /// One key for every request: a single global limit.
    pub fn global() -> KeyExtractor {
        KeyExtractor::from_fn(|_| Ok(RequestKey::Exact(Key::new(0))))
    }

    /// The value of header `name` (hashed). Missing or repeated: 400.
    ///
    /// # Panics
    /// If `name` is not a valid header name (a configuration error, found at start-up).
    pub fn header(name: &str) -> KeyExtractor {
        KeyExtractor::headers(&[name])
    }

    /// The values of several headers, as one key (hashed). Any missing or repeated: 400.
    ///
    /// # Panics
    /// If a name is not a valid header name.
    pub fn headers(names: &[&str]) -> KeyExtractor {
        let names: Vec<HeaderName> = names.iter().map(|n| header_name(n)).collect();
        KeyExtractor::from_fn(move |head| {
            let mut values = Vec::with_capacity(names.len());
            for n in &names {
                values.push(
                    head.single_header(n)
                        .ok_or(KeyRejection::bad_request("missing rate-limit key header"))?,
                );
            }
            Ok(RequestKey::parts(values))
        })
    }

    /// An (app, shop) pair of decimal `u64` ids from two headers, exactly. Missing, repeated or
    /// not a decimal id: 400.
    ///
    /// # Panics
    /// If a name is not a valid header name.
    pub fn id_pair(app: &str, shop: &str) -> KeyExtractor {
        let (app, shop) = (header_name(app), header_name(shop));
        KeyExtractor::from_fn(move |head| {
            let id = |n: &HeaderName| head.single_header(n).and_then(decimal);
            match (id(&app), id(&shop)) {
                (Some(a), Some(s)) => Ok(RequestKey::pair(a, s)),
                _ => Err(KeyRejection::bad_request(
                    "app and shop ids: one decimal u64 each",
                )),
            }
        })
    }

    /// The peer's IP address ([`RequestHead::peer`]), exactly. With axum, serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`; with plain hyper, insert the
    /// accepted connection's `SocketAddr` into each request's extensions. No address: 500 (the
    /// server is not set up to tell).
    pub fn peer_ip() -> KeyExtractor {
        KeyExtractor::from_fn(|head| {
            head.peer()
                .map(|a| RequestKey::ip(a.ip()))
                .ok_or(KeyRejection {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "peer address unavailable: serve with connect info",
                })
        })
    }

    /// This key and the rest of the path after the route prefix, as one key (hashed): TikTok
    /// Shop's (app, shop, api) with the api in the path. An empty rest: 400.
    #[must_use]
    pub fn with_rest(self) -> KeyExtractor {
        KeyExtractor::from_fn(move |head| {
            let base = (self.0)(head)?;
            if head.rest().is_empty() {
                return Err(KeyRejection::bad_request("no API named in the path"));
            }
            let mut bytes = Vec::with_capacity(32 + head.rest().len());
            base.encode(&mut bytes);
            bytes.extend_from_slice(head.rest().as_bytes());
            Ok(RequestKey::Bytes(bytes))
        })
    }

    /// Runs the extractor.
    pub fn extract(&self, head: &RequestHead<'_>) -> Result<RequestKey, KeyRejection> {
        (self.0)(head)
    }
}
