//! The gateway's settings: command-line flags, or the same flags in a small config file.
//!
//! Every flag `--name value` (or `--name` for a switch) may also be written as a line
//! `name value` (or `name`) in a file given with `--config FILE`; `#` starts a comment. Flags are
//! applied in order, so a flag after `--config` overrides the file. See `docs/demo.md`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::table::MAX_TIERS;

/// A named quota tier: what a shop on this tier gets under each policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The tier's name (`standard` is tier 0, the default of every shop).
    pub name: String,
    /// ShopBase bucket size.
    pub shopbase_burst: u64,
    /// ShopBase drain rate, requests per second.
    pub shopbase_per_second: u64,
    /// TikTok Shop requests per second per (app, shop, api).
    pub tiktok_per_second: u64,
}

impl Tier {
    /// The vendors' published limits: ShopBase 30 @ 2/s, TikTok Shop 50/s.
    pub fn standard() -> Tier {
        Tier {
            name: "standard".to_owned(),
            shopbase_burst: shopbase::BURST,
            shopbase_per_second: shopbase::PER_SECOND,
            tiktok_per_second: tiktok_shop::PER_SECOND,
        }
    }
}

/// Everything the gateway can be told.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks a free one (printed at start).
    pub port: u16,
    /// Slots of each key table (ShopBase and TikTok Shop have one each).
    pub slots: usize,
    /// Requests allowed in flight to the upstream at once; more are shed with 503.
    pub max_in_flight: u32,
    /// The stand-in upstream's simulated latency.
    pub upstream_latency: Duration,
    /// Shadow (dry-run) mode: decide and report, never refuse for a rate limit.
    pub shadow: bool,
    /// A full key table lets requests through (flagged) instead of answering 503.
    pub fail_open: bool,
    /// Stop after this long (and print the counters), as on SIGINT/SIGTERM.
    pub duration: Option<Duration>,
    /// Worker threads of the runtime.
    pub threads: usize,
    /// The largest request head (request line and headers) served; larger → 400.
    pub max_header_bytes: usize,
    /// The most request headers served; more → 400.
    pub max_headers: usize,
    /// Tiers by index; tier 0 is `standard`.
    pub tiers: Vec<Tier>,
    /// Shop id → tier index, for shops not on tier 0.
    pub shop_tiers: HashMap<u64, usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            port: 8080,
            slots: 65_536,
            max_in_flight: 64,
            upstream_latency: Duration::from_millis(20),
            shadow: false,
            fail_open: false,
            duration: None,
            threads: 2,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            tiers: vec![Tier::standard()],
            shop_tiers: HashMap::new(),
        }
    }
}

/// A flag or config line that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .or_else(|_| err(format!("--{name}: not a number: {value:?}")))
}

/// The usage text of the gateway binary.
pub const USAGE: &str = "\
tollgate-gateway: an HTTP gateway enforcing ShopBase and TikTok Shop rate limits per (app, shop)

Requests name their caller in headers X-App-Id and X-Shop-Id (decimal u64 ids).
  /shopbase/...  leaky bucket 30 @ 2/s per (app, shop), X-Sb-Shop-Api-Call-Limit, pagination rule
  /tiktok/API    50 per second per (app, shop, API)

Flags (each may also be a line `name value` in a --config file):
  --port N                 port on 127.0.0.1 (default 8080; 0 = any free port, printed)
  --slots N                slots per key table, rounded up to a multiple of 5 (default 65536)
  --max-in-flight N        concurrency cap in front of the upstream, 503 beyond (default 64)
  --upstream-latency-ms N  the stand-in upstream's latency (default 20)
  --shadow                 shadow mode: report what would be limited, refuse nothing for rates
  --fail-open              a full key table lets requests through (default: 503)
  --duration S             stop after S seconds (else on SIGINT/SIGTERM); prints the counters
  --threads N              runtime worker threads (default 2)
  --max-header-bytes N     largest request head served, else 400 (default 16384)
  --tier NAME:B:R:T        a tier: ShopBase bucket B draining R/s, TikTok Shop T/s
  --shop-tier SHOP:NAME    put shop id SHOP on tier NAME (any app)
  --config FILE            read flags from FILE, one per line
";

impl Config {
    /// Parses command-line arguments (without the program name) over the defaults.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut pending_shops: Vec<(u64, String)> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return err(format!("unexpected argument {arg:?} (try --help)"));
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (name.to_owned(), None),
            };
            let value = if takes_value(&name) {
                match inline.or_else(|| args.next()) {
                    Some(v) => Some(v),
                    None => return err(format!("--{name} needs a value")),
                }
            } else {
                inline
            };
            config.apply(&name, value.as_deref(), &mut pending_shops, 0)?;
        }
        config.resolve_shops(pending_shops)?;
        Ok(config)
    }

    fn apply(
        &mut self,
        name: &str,
        value: Option<&str>,
        shops: &mut Vec<(u64, String)>,
        depth: u32,
    ) -> Result<(), ConfigError> {
        let v = value.unwrap_or("");
        match name {
            "port" => self.port = number(name, v)?,
            "slots" => {
                self.slots = number(name, v)?;
                if self.slots == 0 {
                    return err("--slots must be at least 1");
                }
            }
            "max-in-flight" => self.max_in_flight = number(name, v)?,
            "upstream-latency-ms" => {
                self.upstream_latency = Duration::from_millis(number(name, v)?);
            }
            "shadow" => self.shadow = switch(name, value)?,
            "fail-open" => self.fail_open = switch(name, value)?,
            "duration" => {
                let secs: f64 = number(name, v)?;
                if !(secs.is_finite() && secs > 0.0) {
                    return err("--duration must be a positive number of seconds");
                }
                self.duration = Some(Duration::from_secs_f64(secs));
            }
            "threads" => {
                self.threads = number(name, v)?;
                if self.threads == 0 {
                    return err("--threads must be at least 1");
                }
            }
            "max-header-bytes" => self.max_header_bytes = number(name, v)?,
            "tier" => self.add_tier(v)?,
            "shop-tier" => {
                let Some((shop, tier)) = v.split_once(':') else {
                    return err(format!("--shop-tier SHOP:NAME, got {v:?}"));
                };
                shops.push((number(name, shop)?, tier.to_owned()));
            }
            "config" => {
                if depth > 4 {
                    return err("--config nested too deeply");
                }
                let text =
                    std::fs::read_to_string(v).or_else(|e| err(format!("--config {v}: {e}")))?;
                for (i, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    let (n, val) = match line.split_once(char::is_whitespace) {
                        Some((n, val)) => (n, Some(val.trim())),
                        None => (line, None),
                    };
                    self.apply(n, val, shops, depth + 1)
                        .map_err(|e| ConfigError(format!("{v}:{}: {e}", i + 1)))?;
                }
            }
            other => return err(format!("unknown flag --{other} (try --help)")),
        }
        Ok(())
    }

    fn add_tier(&mut self, v: &str) -> Result<(), ConfigError> {
        let parts: Vec<&str> = v.split(':').collect();
        let [name, b, r, t] = parts[..] else {
            return err(format!(
                "--tier NAME:BURST:PER_SECOND:TIKTOK_PER_SECOND, got {v:?}"
            ));
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return err(format!(
                "--tier: a name is letters, digits and '-', got {name:?}"
            ));
        }
        let tier = Tier {
            name: name.to_owned(),
            shopbase_burst: number("tier", b)?,
            shopbase_per_second: number("tier", r)?,
            tiktok_per_second: number("tier", t)?,
        };
        if tier.shopbase_burst == 0 || tier.shopbase_per_second == 0 || tier.tiktok_per_second == 0
        {
            return err(format!("--tier {name}: every number must be at least 1"));
        }
        if let Some(old) = self.tiers.iter_mut().find(|t| t.name == name) {
            *old = tier;
        } else if self.tiers.len() >= MAX_TIERS {
            return err(format!("at most {MAX_TIERS} tiers"));
        } else {
            self.tiers.push(tier);
        }
        Ok(())
    }

    fn resolve_shops(&mut self, shops: Vec<(u64, String)>) -> Result<(), ConfigError> {
        for (shop, name) in shops {
            let Some(index) = self.tiers.iter().position(|t| t.name == name) else {
                return err(format!("--shop-tier {shop}:{name}: no tier named {name:?}"));
            };
            self.shop_tiers.insert(shop, index);
        }
        Ok(())
    }

    /// The tier index of a shop (0 unless `--shop-tier` says otherwise).
    pub fn tier_of(&self, shop: u64) -> usize {
        self.shop_tiers.get(&shop).copied().unwrap_or(0)
    }
}

fn takes_value(name: &str) -> bool {
    !matches!(name, "shadow" | "fail-open")
}

fn switch(name: &str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value {
        None | Some("true" | "on" | "yes" | "1") => Ok(true),
        Some("false" | "off" | "no" | "0") => Ok(false),
        Some(v) => err(format!("--{name}: expected true or false, got {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_tiers_and_shops() {
        let c = Config::from_args(args(
            "--port 0 --slots 128 --shadow --tier plus:60:4:100 --shop-tier 42:plus --duration 1.5",
        ))
        .unwrap();
        assert_eq!((c.port, c.slots, c.shadow), (0, 128, true));
        assert_eq!(c.tiers.len(), 2);
        assert_eq!(c.tier_of(42), 1);
        assert_eq!(c.tier_of(7), 0);
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            "--port x",
            "--slots 0",
            "--shop-tier 1:gold",
            "--tier plus:0:1:1",
            "--tier plus:1:1",
            "--nope",
            "stray",
            "--port",
            "--shadow=maybe",
        ] {
            assert!(Config::from_args(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_file_lines_are_flags() {
        let path = std::env::temp_dir().join(format!("tollgate-gw-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            "# demo\nslots 64\nshadow\ntier plus:60:4:100  # premium\nshop-tier 9:plus\n",
        )
        .unwrap();
        let c = Config::from_args(vec![
            "--config".to_owned(),
            path.display().to_string(),
            "--slots".to_owned(),
            "32".to_owned(),
        ])
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((c.slots, c.shadow, c.tier_of(9)), (32, true, 1));
    }
}
