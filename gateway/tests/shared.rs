//! Several gateway processes on one host over one `[limits] shared_dir`: the policies' key
//! tables live in named shared-memory regions that every process maps, so one key's admitted
//! total across two gateways is exactly the single limit. A gateway started over a region made
//! with other parameters refuses to start, naming the difference; a reload that would change a
//! shared policy's region is refused, and one that keeps it keeps the state.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{block_on, upstream, Gateway, TempFile};

/// A fresh directory for the regions (under /dev/shm where there is one), removed when dropped.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new(name: &str) -> SharedDir {
        let base = PathBuf::from("/dev/shm");
        let base = if base.is_dir() {
            base
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("tollgate-gw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        SharedDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bucket of `burst` that refills 1 per hour (nothing drains during a test), keyed by
/// (app, shop), its table in a region under `dir`.
fn shared_config(up: SocketAddr, dir: &str, burst: u64, slots: u64) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[limits]
shared_dir = "{dir}"
table_slots = {slots}

[upstreams.main]
url = "http://{up}"

[policies.shop]
algorithm = "leaky-bucket"
burst = {burst}
rate = 1
period_ms = 3600000
call_limit_header = true

[[routes]]
name = "shop"
prefix = "/shop"
upstream = "main"
policy = "shop"
key = ["id:x-app-id", "id:x-shop-id"]
"#
    )
}

/// 8 clients per gateway, 20 requests each, all on key (1, 1) at once: the answers.
fn hammer(gateways: &[&Gateway]) -> Vec<common::Reply> {
    let addrs: Vec<SocketAddr> = gateways.iter().map(|g| g.addr).collect();
    block_on(async move {
        let mut tasks = Vec::new();
        for addr in addrs {
            for _ in 0..8 {
                let mut c = common::Client::new(addr);
                tasks.push(tokio::spawn(async move {
                    let mut s = Vec::new();
                    for _ in 0..20 {
                        s.push(c.get("/shop/x", 1, 1).await.unwrap());
                    }
                    s
                }));
            }
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    })
}

const ALLOWED: &str = "tollgate_decisions_total{route=\"shop\",outcome=\"allowed\"}";

#[test]
fn two_gateways_over_one_shared_dir_share_one_exact_limit() {
    let dir = SharedDir::new("exact");
    let up = upstream(Duration::ZERO);
    let a = Gateway::with_config(&shared_config(up, dir.path(), 30, 1000), &[]);
    let b = Gateway::with_config(&shared_config(up, dir.path(), 30, 1000), &[]);
    for g in [&a, &b] {
        assert!(
            g.banner
                .iter()
                .any(|l| l.contains("key tables in shared regions under")),
            "{:?}",
            g.banner
        );
    }
    assert!(dir.0.join("shop").is_file(), "the policy's region");
    // Each gateway in turn: the count is the one bucket's, whichever process answers.
    block_on(async {
        let (mut ca, mut cb) = (a.client(), b.client());
        for used in 1..=4 {
            let c = if used % 2 == 1 { &mut ca } else { &mut cb };
            let r = c.get("/shop/x", 1, 1).await.unwrap();
            assert_eq!(
                (r.status, r.header_str("x-sb-shop-api-call-limit")),
                (200, format!("{used}/30").as_str())
            );
        }
    });
    let all = hammer(&[&a, &b]);
    let ok = all.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = all.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, limited.len()),
        (26, 294),
        "one limit of 30 across both gateways (4 spent before)"
    );
    for r in limited {
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "30/30");
        let retry: u64 = r.header_str("retry-after").parse().unwrap();
        assert!((3_500..=3_600).contains(&retry), "retry-after {retry}");
    }
    // Each gateway admitted part of the 30; both see the one key in their (shared) table.
    let (a_ok, b_ok) = (a.metric(ALLOWED), b.metric(ALLOWED));
    assert_eq!(a_ok + b_ok, 30);
    assert!(a_ok >= 2 && b_ok >= 2, "{a_ok} + {b_ok}");
    for g in [&a, &b] {
        assert_eq!(g.metric("tollgate_table_occupied{table=\"shop\"}"), 1);
    }
    // Another key has its own bucket.
    block_on(async {
        let r = b.client().get("/shop/x", 1, 2).await.unwrap();
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "1/30")
        );
    });
}

/// Runs the gateway to its exit (a start failure): its status and output.
fn gateway_exit(config: &str) -> (i32, String) {
    let f = TempFile::new(config);
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate-gateway"))
        .args(["--config", f.path(), "--port", "0"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn a_region_made_with_other_parameters_is_a_start_error_naming_the_difference() {
    let dir = SharedDir::new("mismatch");
    let up = upstream(Duration::ZERO);
    let first = Gateway::with_config(&shared_config(up, dir.path(), 30, 1000), &[]);
    let region = dir.0.join("shop");
    // Another table size: named with both numbers.
    let (code, err) = gateway_exit(&shared_config(up, dir.path(), 30, 2000));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "policy shop: {}: shared region: ",
            region.display()
        )) && err.contains("capacity is 1000 in the region, 2000 was asked for"),
        "{err}"
    );
    // Another quota: named as the tiers differing.
    let (code, err) = gateway_exit(&shared_config(up, dir.path(), 40, 1000));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "policy shop: {}: shared region: ",
            region.display()
        )) && err.contains("tiers (digest) is ")
            && err.contains("the region was created with other quotas"),
        "{err}"
    );
    // The region outlives its gateways: a restart with the same parameters keeps every key's
    // state.
    block_on(async {
        let r = first.client().get("/shop/x", 5, 5).await.unwrap();
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "1/30");
    });
    drop(first);
    let again = Gateway::with_config(&shared_config(up, dir.path(), 30, 1000), &[]);
    block_on(async {
        let r = again.client().get("/shop/x", 5, 5).await.unwrap();
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "2/30")
        );
    });
    // Fleet mode and a shared directory exclude each other.
    let both = shared_config(up, dir.path(), 30, 1000).replace(
        "[upstreams.main]",
        "[redis]\nurl = \"redis://127.0.0.1:1/\"\n\n[upstreams.main]",
    );
    let (code, err) = gateway_exit(&both);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shared_dir exclude each other"), "{err}");
}

#[test]
fn sighup_keeps_an_unchanged_shared_table_and_refuses_to_change_its_region() {
    let dir = SharedDir::new("reload");
    let up = upstream(Duration::ZERO);
    let gw = Gateway::with_config(&shared_config(up, dir.path(), 3, 1000), &[]);
    let file = gw.config.as_ref().unwrap();
    let statuses = |n: usize| {
        block_on(async {
            let mut c = gw.client();
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(c.get("/shop/x", 1, 1).await.unwrap().status);
            }
            v
        })
    };
    assert_eq!(statuses(4), [200, 200, 200, 429]);
    // The same quotas: the table (the mapped region) is kept.
    file.write(&shared_config(up, dir.path(), 3, 1000));
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert_eq!(line, "reload: ok (state kept for: shop)");
    assert_eq!(statuses(1), [429], "state lost");
    // Another quota over the same region: refused, the running config stays.
    file.write(&shared_config(up, dir.path(), 5, 1000));
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert!(
        line.starts_with("reload: failed, the running config is unchanged: policy shop: ")
            && line.contains("tiers (digest)"),
        "{line}"
    );
    assert_eq!(statuses(1), [429]);
    // Another directory: a new region, the new quota.
    let other = SharedDir::new("reload-other");
    file.write(&shared_config(up, other.path(), 5, 1000));
    gw.signal("HUP");
    let line = gw.wait_line("reload: ", Duration::from_secs(10));
    assert_eq!(line, "reload: ok (state kept for: none)");
    assert_eq!(statuses(6), [200, 200, 200, 200, 200, 429]);
}
