//! Proxying to a real upstream started by the test (bodies both ways, streaming, hop-by-hop
//! headers, upstream failures), config errors, SIGHUP reload, metrics, the access log.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{block_on, dead_port, get, raw, upstream, Gateway, TempFile};

/// A config with one route `/api` (keyed by client address) on a generous bucket, and one
/// unlimited route `/open`, to `up`.
fn api_config(up: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[upstreams.main]
url = "{up}"
response_timeout_ms = 1000
connect_timeout_ms = 500

[policies.generous]
algorithm = "leaky-bucket"
burst = 1000
rate = 1000

[[routes]]
name = "api"
prefix = "/api"
upstream = "main"
policy = "generous"
key = ["client-ip"]

[[routes]]
name = "open"
prefix = "/open"
upstream = "main"
strip_prefix = true
{extra}
"#
    )
}

fn http_up() -> String {
    format!("http://{}", upstream(Duration::ZERO))
}

#[test]
fn request_and_response_bodies_stream_through() {
    let gw = Gateway::with_config(&api_config(&http_up(), ""), &[]);
    // 1 MiB up and back, in one request.
    let body: Vec<u8> = (0..1_048_576u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /api/echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("ratelimit-policy: \"generous\";q=1000;w=1"),
        "{head}"
    );
    let echoed = &got[split + 4..];
    // Chunked or not, the payload comes back whole and in order.
    let payload: Vec<u8> = if head.contains("transfer-encoding: chunked") {
        dechunk(echoed)
    } else {
        echoed.to_vec()
    };
    assert_eq!(payload.len(), body.len());
    assert!(payload == body);

    // A streamed response: the first chunk arrives while the upstream is still producing the
    // last one (it waits 800 ms before it).
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("one\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        !String::from_utf8_lossy(&got).contains("three"),
        "not streamed"
    );
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("two\n") && text.contains("three\n"), "{text}");
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        b = &b[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[test]
fn hop_by_hop_headers_stay_on_their_hop() {
    let gw = Gateway::with_config(&api_config(&http_up(), ""), &[]);
    let (status, _) = raw(gw.addr, b"GET /api/hop HTTP/1.1\r\nhost: gw.example\r\nconnection: close, x-secret\r\nx-secret: 1\r\nte: trailers\r\nkeep-alive: 5\r\nproxy-connection: keep-alive\r\nx-keep: 1\r\n\r\n");
    assert_eq!(status, 200);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/hop HTTP/1.1\r\nhost: gw.example\r\nconnection: close, x-secret\r\nx-secret: 1\r\nte: trailers\r\nkeep-alive: 5\r\nproxy-connection: keep-alive\r\nx-keep: 1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    let saw = head
        .lines()
        .find_map(|l| l.strip_prefix("x-saw: "))
        .unwrap_or_else(|| panic!("{head}"));
    let saw: Vec<&str> = saw.split(',').collect();
    for gone in ["x-secret", "te", "keep-alive", "proxy-connection"] {
        assert!(!saw.contains(&gone), "upstream saw {gone}: {saw:?}");
    }
    for kept in ["x-keep", "x-forwarded-for", "x-forwarded-host", "host"] {
        assert!(saw.contains(&kept), "upstream did not see {kept}: {saw:?}");
    }
    // The upstream's hop-by-hop headers do not reach the client either.
    assert!(!head.contains("x-private"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    assert!(head.contains("ratelimit: \"generous\""), "{head}");
}

#[test]
fn statuses_paths_and_queries_pass_through() {
    let up = upstream(Duration::ZERO);
    let config = api_config(&format!("http://{up}/base/"), "");
    let gw = Gateway::with_config(&config, &[]);
    block_on(async {
        let mut c = gw.client();
        let r = c.send("GET", "/api/status/418", &[]).await.unwrap();
        assert_eq!(r.status, 418);
        assert!(r.header_str("ratelimit").starts_with("\"generous\";r="));
        let r = c.send("GET", "/api/x//y/./z?a=1&b=%20", &[]).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"ok /base/api/x/y/z?a=1&b=%20\n");
        // strip_prefix: /open/q → /base/q, no limiter headers on an unlimited route.
        let r = c.send("GET", "/open/q?z", &[]).await.unwrap();
        assert_eq!(&r.body[..], b"ok /base/q?z\n");
        assert_eq!(r.header("ratelimit-policy"), None);
        let r = c.send("GET", "/open", &[]).await.unwrap();
        assert_eq!(&r.body[..], b"ok /base/\n");
        // No route.
        assert_eq!(c.send("GET", "/elsewhere", &[]).await.unwrap().status, 404);
    });
}

#[test]
fn upstream_failures_are_502_and_504_with_the_limiter_headers() {
    // Nothing listens: 502.
    let gw = Gateway::with_config(
        &api_config(&format!("http://127.0.0.1:{}", dead_port()), ""),
        &[],
    );
    block_on(async {
        let mut c = gw.client();
        let r = c.send("GET", "/api/x", &[]).await.unwrap();
        assert_eq!(r.status, 502);
        assert!(
            r.header_str("ratelimit").starts_with("\"generous\";r=999;"),
            "{r:?}"
        );
        assert_eq!(r.header_str("ratelimit-policy"), "\"generous\";q=1000;w=1");
    });
    assert!(gw.metric("tollgate_upstream_errors_total{upstream=\"main\",kind=\"connect\"}") >= 1);
    // Slower than response_timeout_ms (1 s): 504.
    let gw = Gateway::with_config(&api_config(&http_up(), ""), &[]);
    block_on(async {
        let mut c = gw.client();
        let r = c.send("GET", "/api/slow", &[]).await.unwrap();
        assert_eq!(r.status, 504);
        assert!(
            r.header_str("ratelimit").starts_with("\"generous\";r=999;"),
            "{r:?}"
        );
        // The permit came back: the cap is not leaked by failures.
        let r = c.send("GET", "/api/ok", &[]).await.unwrap();
        assert_eq!(r.status, 200);
    });
    assert_eq!(gw.metric("tollgate_in_flight{upstream=\"main\"}"), 0);
}

fn gateway_exit(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate-gateway"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn config_errors_name_the_line_and_check_validates() {
    let up = "http://127.0.0.1:9";
    let mut bad = Vec::new();
    for (broken, line, words) in [
        (
            api_config(up, "").replace("burst = 1000", "burst = 0"),
            10,
            "burst",
        ),
        (
            api_config(up, "").replace(
                "upstream = \"main\"\npolicy",
                "upstream = \"other\"\npolicy",
            ),
            18,
            "\"other\"",
        ),
        (
            api_config(up, "").replace("rate = 1000", "rate = \"fast\""),
            13,
            "expected u64",
        ),
        (
            api_config(up, "").replace("[server]", "[server]\nthreds = 2"),
            3,
            "threds",
        ),
        (
            api_config(up, "").replace("key = [\"client-ip\"]", "key = [\"cookie:sid\"]"),
            20,
            "key part",
        ),
        (
            api_config(up, "").replace(
                "url = \"http://127.0.0.1:9\"",
                "url = \"https://127.0.0.1:9\"",
            ),
            5,
            "http://",
        ),
        (
            api_config(up, "").replace("prefix = \"/api\"", "prefix = \"/api/../x\""),
            17,
            "prefix",
        ),
        (
            api_config(up, "").replace("[upstreams.main]", "[upstreams.main"),
            5,
            "",
        ),
    ] {
        let f = TempFile::new(&broken);
        let (code, err) = gateway_exit(&["--config", f.path()]);
        assert_eq!(code, 2, "{err}");
        let want = format!("{}:{line}:", f.path());
        if !(err.contains(&want) && err.contains(words)) {
            bad.push(format!("want {want} {words}: {err}"));
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(bad.is_empty(), "{bad:#?}");
    let f = TempFile::new(&api_config(up, ""));
    let (code, out) = gateway_exit(&["--config", f.path(), "--check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("config ok"), "{out}");
    let (code, out) = gateway_exit(&["--config", "/nonexistent/x.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("/nonexistent/x.toml"), "{out}");
}

fn reload_config(up: &str, burst: u64, other_limit: u64, extra_route: bool) -> String {
    let mut c = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[upstreams.main]
url = "{up}"

[policies.kept]
algorithm = "leaky-bucket"
burst = {burst}
rate = 1
period_ms = 3600000

[policies.other]
algorithm = "fixed-window"
limit = {other_limit}
window_ms = 3600000

[[routes]]
name = "a"
prefix = "/a"
upstream = "main"
policy = "kept"
key = ["id:x-app-id", "id:x-shop-id"]

[[routes]]
name = "b"
prefix = "/b"
upstream = "main"
policy = "other"
key = ["id:x-app-id", "id:x-shop-id"]
"#
    );
    if extra_route {
        c.push_str("\n[[routes]]\nname = \"c\"\nprefix = \"/c\"\nupstream = \"main\"\n");
    }
    c
}

async fn statuses(c: &mut common::Client, path: &str, n: usize) -> Vec<u16> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(get(c, path, 1, 1).await.status);
    }
    v
}

#[test]
fn sighup_reloads_and_keeps_the_state_of_unchanged_quotas() {
    let up = http_up();
    let gw = Gateway::with_config(&reload_config(&up, 3, 2, false), &[]);
    let file = gw.config.as_ref().unwrap();
    block_on(async {
        let mut c = gw.client();
        assert_eq!(statuses(&mut c, "/a/x", 4).await, [200, 200, 200, 429]);
        assert_eq!(statuses(&mut c, "/b/x", 3).await, [200, 200, 429]);
        assert_eq!(c.send("GET", "/c/x", &[]).await.unwrap().status, 404);
    });
    // `other` changes (and a route is added): `kept` keeps its buckets, `other` starts afresh.
    file.write(&reload_config(&up, 3, 5, true));
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert_eq!(line, "reload: ok (state kept for: kept)");
    block_on(async {
        let mut c = gw.client();
        assert_eq!(statuses(&mut c, "/a/x", 1).await, [429], "state lost");
        let r = get(&mut c, "/b/x", 1, 1).await;
        assert_eq!(
            (r.status, r.header_str("ratelimit-policy")),
            (200, "\"other\";q=5;w=3600")
        );
        assert_eq!(c.send("GET", "/c/x", &[]).await.unwrap().status, 200);
    });
    // A broken file: refused, the running config stays.
    file.write("[[routes]]\nname = \"a\"\n");
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert!(
        line.starts_with("reload: failed, the running config is unchanged: "),
        "{line}"
    );
    assert!(line.contains(":2:") || line.contains(":1:"), "{line}");
    block_on(async {
        let mut c = gw.client();
        assert_eq!(c.send("GET", "/c/x", &[]).await.unwrap().status, 200);
        assert_eq!(statuses(&mut c, "/a/x", 1).await, [429]);
    });
    // `kept` changes its quota: a new table.
    file.write(&reload_config(&up, 5, 5, true));
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert_eq!(line, "reload: ok (state kept for: other)");
    block_on(async {
        let mut c = gw.client();
        assert_eq!(
            statuses(&mut c, "/a/x", 6).await,
            [200, 200, 200, 200, 200, 429]
        );
    });
    assert_eq!(gw.metric("tollgate_reloads_total{result=\"ok\"}"), 2);
    assert_eq!(gw.metric("tollgate_reloads_total{result=\"failed\"}"), 1);
}

#[test]
fn metrics_healthz_and_the_access_log() {
    let log = TempFile::new("");
    let up = http_up();
    let config = api_config(&up, "").replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!(
            "listen = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\naccess_log = \"{}\"",
            log.path()
        ),
    );
    let gw = Gateway::with_config(&config, &[]);
    let admin: SocketAddr = gw.admin.expect("an admin listener");
    block_on(async {
        let mut c = gw.client();
        for _ in 0..3 {
            assert_eq!(c.send("GET", "/api/x", &[]).await.unwrap().status, 200);
        }
        assert_eq!(c.send("GET", "/nowhere", &[]).await.unwrap().status, 404);
        // /metrics and /healthz live on the admin listener only.
        assert_eq!(c.send("GET", "/metrics", &[]).await.unwrap().status, 404);
        let mut a = common::Client::new(admin);
        assert_eq!(a.send("GET", "/healthz", &[]).await.unwrap().status, 200);
        assert_eq!(a.send("GET", "/api/x", &[]).await.unwrap().status, 404);
    });
    let m = gw.metrics();
    for want in [
        "tollgate_decisions_total{route=\"api\",outcome=\"allowed\"} 3",
        "tollgate_responses_total{route=\"api\",status=\"200\"} 3",
        "tollgate_responses_total{route=\"-\",status=\"404\"} 3",
        "tollgate_table_occupied{table=\"generous\"} 1",
        "tollgate_table_slots{table=\"generous\"} 65536",
        "tollgate_table_rejected_total{table=\"generous\"} 0",
        "tollgate_in_flight{upstream=\"main\"} 0",
        "tollgate_upstream_latency_seconds_count{upstream=\"main\"} 3",
        "tollgate_connections_refused_total 0",
    ] {
        assert!(m.contains(want), "missing {want}:\n{m}");
    }
    // The access log: one JSON object per request (written by its own thread).
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log.0)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
            .collect();
        if lines.len() >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let api: Vec<_> = lines.iter().filter(|l| l["route"] == "api").collect();
    assert_eq!(api.len(), 3, "{lines:?}");
    for l in &api {
        assert_eq!(l["status"], 200);
        assert_eq!(l["decision"], "allowed");
        assert_eq!(l["path"], "/api/x");
        assert!(l["upstream_ms"].as_f64().is_some());
        assert!(l["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    assert!(lines
        .iter()
        .any(|l| l["status"] == 404 && l["reason"] == "no route"));
}

#[test]
fn the_documented_config_is_valid() {
    let doc = include_str!("../../docs/gateway.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let s = tollgate_gateway::config::Settings::parse(text, "docs/gateway.md").unwrap();
    assert_eq!(s.routes.len(), 3);
    assert_eq!(s.tiers, ["standard", "plus"]);
    assert!(s.redis.is_some());
    // Without its [redis] table, it serves in front of a real upstream.
    let up = upstream(Duration::ZERO);
    let local = text.split("[redis]").next().unwrap().to_owned()
        + &text[text.find("[upstreams.shop-api]").unwrap()..];
    let local = local
        .replace("http://127.0.0.1:9000", &format!("http://{up}"))
        .replace("0.0.0.0:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("/var/log/tollgate/access.log", "off")
        .replace("table_slots = 1048576", "table_slots = 1024");
    let gw = Gateway::with_config(&local, &[]);
    block_on(async {
        let mut c = gw.client();
        let r = get(
            &mut c,
            "/shopbase/admin/products.json?limit=50&page=3",
            7,
            42,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "1/60");
        assert_eq!(
            &r.body[..],
            b"ok /shopbase/admin/products.json?limit=50&page=3\n"
        );
        let r = get(&mut c, "/tiktok/order/search", 7, 42).await;
        assert_eq!(r.header_str("ratelimit-policy"), "\"tiktok\";q=100;w=1");
        assert_eq!(get(&mut c, "/tiktok/orders/all", 7, 42).await.status, 404);
        let r = c.send("GET", "/status", &[]).await.unwrap();
        assert_eq!((r.status, r.header("ratelimit")), (200, None));
    });
}

#[test]
fn key_parts_methods_and_tiers() {
    let up = upstream(Duration::ZERO);
    let config = format!(
        r#"
[upstreams.main]
url = "http://{up}"

[tiers.gold]
members = ["t-gold"]

[policies.two]
algorithm = "fixed-window"
limit = 2
window_ms = 3600000

[policies.two.tiers.gold]
limit = 3

[[routes]]
name = "k1"
prefix = "/k1"
upstream = "main"
policy = "two"
key = ["api-key:x-api-key"]

[[routes]]
name = "k2"
prefix = "/k2"
methods = ["GET", "post"]
upstream = "main"
policy = "two"
key = ["client-ip", "header:x-tenant"]
tier = "header:x-tenant"

[[routes]]
name = "k3"
prefix = "/k3"
upstream = "main"
policy = "two"
key = ["path"]
"#
    );
    let gw = Gateway::with_config(&config, &["--listen", "127.0.0.1:0"]);
    block_on(async {
        let mut c = gw.client();
        let run = |path: &'static str, h: Vec<(&'static str, &'static str)>, n: usize| {
            let mut c = gw.client();
            async move {
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(c.send("GET", path, &h).await.unwrap().status);
                }
                v
            }
        };
        // An API key: required (401), each key its own window.
        assert_eq!(run("/k1/x", vec![], 1).await, [401]);
        assert_eq!(
            run("/k1/x", vec![("x-api-key", "secret-a")], 3).await,
            [200, 200, 429]
        );
        assert_eq!(
            run("/k1/y", vec![("x-api-key", "secret-b")], 1).await,
            [200]
        );
        // A header part (caller-chosen) and the tier it picks.
        assert_eq!(run("/k2", vec![], 1).await, [400]);
        assert_eq!(
            run("/k2", vec![("x-tenant", "t1")], 3).await,
            [200, 200, 429]
        );
        assert_eq!(
            run("/k2", vec![("x-tenant", "t-gold")], 4).await,
            [200, 200, 200, 429]
        );
        let r = c
            .send("GET", "/k2", &[("x-tenant", "t-gold")])
            .await
            .unwrap();
        assert_eq!(r.header_str("ratelimit-policy"), "\"two\";q=3;w=3600");
        // Methods: POST listed (any case in the file), DELETE not.
        let r = c.send("POST", "/k2", &[("x-tenant", "t2")]).await.unwrap();
        assert_eq!(r.status, 200);
        let r = c
            .send("DELETE", "/k2", &[("x-tenant", "t2")])
            .await
            .unwrap();
        assert_eq!(r.status, 405);
        // The whole path, trailing slash ignored.
        assert_eq!(run("/k3/a", vec![], 2).await, [200, 200]);
        assert_eq!(run("/k3/a/", vec![], 1).await, [429]);
        assert_eq!(run("/k3/b", vec![], 1).await, [200]);
    });
}
