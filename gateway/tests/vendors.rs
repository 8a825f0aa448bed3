//! The built-in config (ShopBase and TikTok Shop in front of one upstream) against the real
//! binary and a real upstream started by the test: the policies' numbers and headers, tiers,
//! the concurrency cap, malformed requests, shadow mode, a full table, and the demo's load
//! program (the toolkit client gets no 429).

mod common;

use std::time::{Duration, Instant};

use common::{block_on, get, raw_status, upstream, vendors, Client, Gateway, Reply};
use tollgate_gateway::load::{self, LoadConfig};

/// The gateway on the built-in config, its upstream answering after `latency_ms`.
fn vendors_gateway(latency_ms: u64, args: &[&str]) -> Gateway {
    let up = upstream(Duration::from_millis(latency_ms));
    Gateway::with_config(&vendors(up), args)
}

const PLUS: &str = "
[tiers.plus]
members = [\"42\"]

[policies.shopbase.tiers.plus]
burst = 60
rate = 4

[policies.tiktok.tiers.plus]
limit = 100
";

#[test]
fn shopbase_bucket_headers_429_retry_after_and_tiers() {
    let up = upstream(Duration::ZERO);
    let gw = Gateway::with_config(&(vendors(up) + PLUS), &[]);
    block_on(async {
        let mut c = gw.client();
        // 30 back to back pass, each reporting the bucket's level (the drain between two
        // requests, 2/s, can only lower it: used ≤ n).
        for n in 1..=30u64 {
            let r = get(&mut c, "/shopbase/admin/products.json", 7, 1).await;
            assert_eq!(r.status, 200, "request {n}");
            let (used, limit) = r
                .header_str("x-sb-shop-api-call-limit")
                .split_once('/')
                .map(|(u, l)| (u.parse::<u64>().unwrap(), l.to_owned()))
                .expect("used/limit");
            assert_eq!(limit, "30");
            assert!(used >= 1 && used <= n, "{used} after {n}");
            assert_eq!(r.header_str("ratelimit-policy"), "\"shopbase\";q=30;w=15");
        }
        // Keep asking until the bucket refuses (at most a few drained in the meantime).
        let mut refused = None;
        for _ in 0..20 {
            let r = get(&mut c, "/shopbase/admin/products.json", 7, 1).await;
            if r.status != 200 {
                refused = Some(r);
                break;
            }
        }
        let r = refused.expect("the bucket refuses within 20 more requests");
        assert_eq!(r.status, 429);
        assert_eq!(r.header_str("retry-after"), "1");
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "30/30");
        assert!(r.header_str("ratelimit").starts_with("\"shopbase\";r=0;t="));

        // Another app for the same shop, and another shop of the same app: separate buckets.
        assert_eq!(get(&mut c, "/shopbase/x", 8, 1).await.status, 200);
        let r = get(&mut c, "/shopbase/x", 7, 2).await;
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "1/30")
        );

        // Shop 42 is on the "plus" tier: a bucket of 60.
        let r = get(&mut c, "/shopbase/x", 7, 42).await;
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "1/60");
        assert_eq!(r.header_str("ratelimit-policy"), "\"shopbase\";q=60;w=15");
        let r = get(&mut c, "/tiktok/order/detail", 7, 42).await;
        assert_eq!(r.header_str("ratelimit-policy"), "\"tiktok\";q=100;w=1");
    });
}

#[test]
fn shopbase_pagination_rule() {
    let gw = vendors_gateway(0, &[]);
    block_on(async {
        let mut c = gw.client();
        let r = get(&mut c, "/shopbase/p.json?limit=250&page=401", 1, 1).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), None, "retrying cannot help");
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "0/30");
        let r = get(&mut c, "/shopbase/p.json?limit=250&page=400", 1, 1).await;
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "1/30")
        );
        // A product that overflows 64 bits exceeds the maximum.
        let r = get(
            &mut c,
            "/shopbase/p.json?limit=4294967296&page=4294967296",
            1,
            1,
        )
        .await;
        assert_eq!(r.status, 429);
        let r = get(&mut c, "/shopbase/p.json?limit=abc&page=1", 1, 1).await;
        assert_eq!(r.status, 400);
        // Only GET is a page read.
        let r = c
            .send(
                "POST",
                "/shopbase/p.json?limit=250&page=401",
                &[("x-app-id", "1"), ("x-shop-id", "1")],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    });
}

#[test]
fn tiktok_fixed_window_per_api() {
    let gw = vendors_gateway(0, &[]);
    block_on(async {
        // 110 requests on 10 connections at once, for one (app, shop, api).
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let mut c = gw.client();
            tasks.push(tokio::spawn(async move {
                let mut replies = Vec::new();
                for _ in 0..11 {
                    replies.push(get(&mut c, "/tiktok/product/search", 5, 9).await);
                }
                replies
            }));
        }
        let mut replies = Vec::new();
        for t in tasks {
            replies.extend(t.await.unwrap());
        }
        let windows = started.elapsed().as_secs() + 2; // windows the run can touch
        let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
        assert_eq!(ok.len() + limited.len(), 110);
        assert!(
            ok.len() >= 50 && ok.len() as u64 <= 50 * windows,
            "{} passed",
            ok.len()
        );
        // Each window admits exactly 50: the remaining counts 49..0 appear at most once per
        // window, and a full window (r=0) was reached.
        for r in 0..50 {
            let v = format!("\"tiktok\";r={r};t=1");
            let n = ok.iter().filter(|x| x.header_str("ratelimit") == v).count() as u64;
            assert!(n <= windows, "r={r} seen {n} times");
        }
        assert!(ok
            .iter()
            .any(|x| x.header_str("ratelimit").contains(";r=0;")));
        for r in &limited {
            assert_eq!(r.header_str("retry-after"), "1");
            assert!(r.header_str("ratelimit").starts_with("\"tiktok\";r=0;"));
            assert_eq!(r.header_str("ratelimit-policy"), "\"tiktok\";q=50;w=1");
            assert_eq!(r.header("x-sb-shop-api-call-limit"), None);
        }
        assert!(!limited.is_empty());
        // Another API, another shop, another app: their own windows.
        let mut c = gw.client();
        assert_eq!(get(&mut c, "/tiktok/order/search", 5, 9).await.status, 200);
        assert_eq!(
            get(&mut c, "/tiktok/product/search", 5, 10).await.status,
            200
        );
        assert_eq!(
            get(&mut c, "/tiktok/product/search", 6, 9).await.status,
            200
        );
    });
}

#[test]
fn concurrency_cap_sheds_with_503() {
    let gw = vendors_gateway(1500, &["--max-in-flight", "2"]);
    block_on(async {
        let mut clients: Vec<Client> = (0..6).map(|_| gw.client()).collect();
        for c in &mut clients {
            c.connect().await.unwrap();
        }
        let tasks: Vec<_> = clients
            .into_iter()
            .zip(1u64..)
            .map(|(mut c, shop)| {
                tokio::spawn(async move { get(&mut c, "/tiktok/order/detail", 1, shop).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 503 {
                assert_eq!(r.header_str("retry-after"), "1");
            }
            statuses.push(r.status);
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 200, 503, 503, 503, 503]);
        // The permits came back.
        let mut c = gw.client();
        assert_eq!(get(&mut c, "/tiktok/order/detail", 1, 99).await.status, 200);
    });
}

#[test]
fn malformed_requests_get_400_and_the_gateway_keeps_serving() {
    let gw = vendors_gateway(0, &[]);
    block_on(async {
        let mut c = gw.client();
        for (app, shop) in [
            (None, Some("1")),
            (Some("1"), None),
            (Some("x"), Some("1")),
            (Some("1"), Some("-1")),
            (Some("1"), Some("+1")),
            (Some("1"), Some("0x10")),
            (Some("1"), Some("18446744073709551616")),
            (Some(""), Some("1")),
        ] {
            let mut h = Vec::new();
            if let Some(a) = app {
                h.push(("x-app-id", a));
            }
            if let Some(s) = shop {
                h.push(("x-shop-id", s));
            }
            let r = c.send("GET", "/shopbase/x", &h).await.unwrap();
            assert_eq!(r.status, 400, "{app:?} {shop:?}");
            assert_eq!(r.header("x-sb-shop-api-call-limit"), None);
        }
        let max = c
            .send(
                "GET",
                "/shopbase/x",
                &[("x-app-id", "1"), ("x-shop-id", "18446744073709551615")],
            )
            .await
            .unwrap();
        assert_eq!(max.status, 200);
        let two = c
            .send(
                "GET",
                "/tiktok/order/detail",
                &[("x-app-id", "1"), ("x-shop-id", "1"), ("x-shop-id", "2")],
            )
            .await
            .unwrap();
        assert_eq!(two.status, 400);
        assert_eq!(get(&mut c, "/tiktok/", 1, 1).await.status, 404);
        assert_eq!(get(&mut c, "/tiktok/no/such/api", 1, 1).await.status, 404);
        assert_eq!(get(&mut c, "/other", 1, 1).await.status, 404);
        // A 20 KiB header: over the gateway's 16 KiB limit (hyper answers 431 and closes).
        let big = "a".repeat(20 * 1024);
        let r = c
            .send(
                "GET",
                "/shopbase/x",
                &[("x-app-id", "1"), ("x-shop-id", "1"), ("x-junk", &big)],
            )
            .await
            .map_or(0, |r| r.status);
        assert!(matches!(r, 431 | 0), "{r}");
        // 150 small headers: over the gateway's 100.
        let names: Vec<String> = (0..150).map(|i| format!("x-h{i}")).collect();
        let mut h: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
        h.extend([("x-app-id", "1"), ("x-shop-id", "1")]);
        let r = c
            .send("GET", "/shopbase/x", &h)
            .await
            .map_or(0, |r| r.status);
        assert!(matches!(r, 431 | 0), "{r}");
    });
    // What no client library sends: garbage, and a head larger than hyper's buffer.
    assert_eq!(raw_status(gw.addr, b"NOT HTTP AT ALL\r\n\r\n"), 400);
    let mut huge =
        b"GET /shopbase/x HTTP/1.1\r\nhost: x\r\nx-app-id: 1\r\nx-shop-id: 1\r\nx-junk: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 400 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let status = raw_status(gw.addr, &huge);
    assert!(matches!(status, 431 | 400 | 0), "{status}");
    // Still serving.
    block_on(async {
        let r = get(&mut gw.client(), "/shopbase/x", 1, 1).await;
        assert_eq!(r.status, 200);
    });
    let out = gw.stop();
    assert!(out.contains("stopping (SIGTERM)"), "{out}");
}

#[test]
fn shadow_mode_reports_and_refuses_nothing() {
    let gw = vendors_gateway(0, &["--shadow", "--duration", "30"]);
    block_on(async {
        let mut c = gw.client();
        let mut would = 0;
        for _ in 0..40 {
            let r = get(&mut c, "/shopbase/x", 3, 3).await;
            assert_eq!(r.status, 200);
            match r.header_str("x-tollgate-shadow") {
                "would-limit" => {
                    would += 1;
                    assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "30/30");
                }
                "pass" => {}
                other => panic!("shadow header {other:?}"),
            }
        }
        // 10 if instantaneous; fewer as the bucket drains 2/s during the run.
        assert!((1..=10).contains(&would), "{would} would have been limited");
        let r = get(&mut c, "/shopbase/x?limit=250&page=401", 3, 4).await;
        assert_eq!(
            (r.status, r.header_str("x-tollgate-shadow")),
            (200, "would-limit")
        );
    });
    let out = gw.stop();
    assert!(out.contains("(shadow mode: "), "{out}");
    assert!(out.contains("429 0, "), "{out}");
}

#[test]
fn a_full_table_sheds_and_its_counters_are_printed_on_exit() {
    let mut gw = vendors_gateway(0, &["--slots", "4", "--duration", "5"]);
    let statuses = block_on(async {
        let mut c = gw.client();
        let mut s = Vec::new();
        for shop in 1..=10 {
            s.push(get(&mut c, "/shopbase/x", 1, shop).await.status);
        }
        // One request drains in 0.5 s: then every slot may be taken by a new key.
        tokio::time::sleep(Duration::from_millis(700)).await;
        s.push(get(&mut c, "/shopbase/x", 1, 11).await.status);
        s
    });
    assert_eq!(statuses[..4], [200; 4]);
    assert_eq!(statuses[10], 200);
    let shed = statuses.iter().filter(|&&s| s == 503).count() as u64;
    let out = gw.wait_output();
    assert!(out.contains("stopping (--duration elapsed)"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("shopbase table: 4 slots, occupied 4, reclaimed "))
        .unwrap_or_else(|| panic!("{out}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (reclaimed, rejected) = (nums[2], nums[3]);
    assert_eq!(rejected, shed, "{out}");
    assert!(reclaimed >= 1, "{out}");
    assert_eq!(reclaimed + rejected, 7, "{out}");
    assert!(
        out.contains("tiktok table: 4 slots, occupied 0, reclaimed 0, rejected 0"),
        "{out}"
    );
}

#[test]
fn the_toolkit_client_gets_no_429() {
    let gw = vendors_gateway(20, &["--max-in-flight", "8"]);
    let config = LoadConfig {
        target: gw.addr,
        duration: Duration::from_secs(8),
        // Generous: the test machine may be busy.
        jitter: Duration::from_millis(300),
        shops: 2,
        workers: 3,
        burst: 16,
        ..LoadConfig::default()
    };
    let lanes = block_on(load::run(&config)).expect("load");
    let summary = load::summary(&config, &lanes);
    println!("{summary}");
    load::check(&lanes).unwrap_or_else(|e| panic!("{e}\n{summary}"));
    let naive_429: u64 = lanes
        .iter()
        .filter(|l| l.client == "naive")
        .map(|l| l.snapshot().limited)
        .sum();
    assert!(
        naive_429 > 0,
        "the naive client should have been limited\n{summary}"
    );
    let burst = lanes
        .iter()
        .find(|l| l.client == "burst")
        .unwrap()
        .snapshot();
    assert!(burst.overloaded > 0 && burst.limited == 0, "{summary}");
}
