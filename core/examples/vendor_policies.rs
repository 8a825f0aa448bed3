//! The two vendor policies deciding on one simulated second-by-second timeline, with the
//! headers a gateway would send. Run: `cargo run -p tollgate --example vendor_policies`.

use std::fmt::Write as _;

use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::{header, pagination, Decision, FixedWindow, LeakyBucket, Outcome};

const MS: u64 = 1_000; // a millisecond clock

fn text(buf: &[u8], n: usize) -> &str {
    core::str::from_utf8(&buf[..n]).unwrap_or("?")
}

fn show(policy: &str, t: u64, d: &Decision, extra: &str) {
    let mut buf = [0u8; 64];
    let status = d.outcome.http_status().unwrap_or(200);
    let mut line = format!("{:>3}.{:03}s {policy:<9} {status}", t / MS, t % MS);
    if let Ok(Some(s)) = header::retry_after_seconds(d, MS) {
        let _ = write!(line, "  Retry-After: {s}");
    }
    if let Ok(n) = header::write_ratelimit(policy, d, MS, &mut buf) {
        let _ = write!(line, "  RateLimit: {}", text(&buf, n));
    }
    println!("{line}{extra}");
}

fn main() -> Result<(), tollgate::Error> {
    println!("ShopBase: leaky bucket 30, draining 2/s; 40 calls at once, then one every 400 ms");
    let shop = LeakyBucket::new(shopbase::quota(MS)?);
    let mut buf = [0u8; 32];
    let (mut ok, mut limited) = (0, 0);
    for i in 0..60u64 {
        let t = if i < 40 { 0 } else { (i - 39) * 400 };
        let d = shop.decide(t, 1)?;
        if d.is_allowed() {
            ok += 1;
        } else {
            limited += 1;
        }
        if i < 2 || (28..32).contains(&i) || i >= 56 {
            let n = header::write_shop_api_call_limit(&d, &mut buf)?;
            show(
                "shopbase",
                t,
                &d,
                &format!("  {}: {}", shopbase::HEADER, text(&buf, n)),
            );
        }
    }
    let d = shop.peek(30_000, 1)?;
    let n = header::write_shop_api_call_limit(&d, &mut buf)?;
    println!(
        "  ...{ok} passed, {limited} got 429; at 30 s the bucket reads {}",
        text(&buf, n)
    );
    let mut policy = [0u8; 48];
    let n = header::write_ratelimit_policy_bucket("shopbase", shop.quota(), MS, &mut policy)?;
    println!("  RateLimit-Policy: {}", text(&policy, n));
    for q in ["limit=250&page=400", "limit=250&page=401"] {
        let o = pagination::check_query(q.as_bytes(), shopbase::MAX_OFFSET)?;
        let verdict = if o == Outcome::Never {
            "429 (Never: retrying cannot help)"
        } else {
            "passes"
        };
        println!(
            "  GET ?{q}: offset {} -> {verdict}",
            if q.ends_with("400") { 100_000 } else { 100_250 }
        );
    }

    println!("\nTikTok Shop: fixed window 50 per second per (app, shop, api); 120 calls over 2 s");
    let api = FixedWindow::new(tiktok_shop::server_quota(MS)?);
    let (mut ok, mut limited) = (0, 0);
    for i in 0..120u64 {
        let t = i * 2_000 / 120;
        let d = api.decide(t, 1)?;
        if d.is_allowed() {
            ok += 1;
        } else {
            limited += 1;
        }
        if i == 49 || i == 50 || i == 60 || i == 110 {
            show("tiktok", t, &d, "");
        }
    }
    println!("  ...{ok} passed, {limited} got 429 (50 in each one-second window)");
    Ok(())
}
