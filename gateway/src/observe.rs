//! Observability: Prometheus metrics (the Prometheus project's `prometheus-client`) and the
//! structured access log (one JSON object per line, written by its own thread so a slow disk
//! never blocks a request; lines that do not fit its queue are counted and dropped).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::config::AccessLog;
use crate::limits::{RedisReport, TableReport};

/// Labels of a decision: the route and what was decided.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The route's name.
    pub route: String,
    /// `allowed`, `limited`, `never` (pagination), `overloaded` (cap, full table, Redis down),
    /// `new_key_limited`, `would_limit` (shadow), `fail_open`.
    pub outcome: &'static str,
}

/// Labels of a response: the route (or `-`) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The route's name, or `-` for requests that matched none.
    pub route: String,
    /// The HTTP status.
    pub status: u16,
}

/// Labels naming an upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The upstream's name.
    pub upstream: String,
}

/// Labels of an upstream failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// The upstream's name.
    pub upstream: String,
    /// `connect` (502), `timeout` (504), `other` (502).
    pub kind: &'static str,
}

/// Where the collector finds the tables and the Redis counters at scrape time.
pub trait Source: Send + Sync + std::fmt::Debug + 'static {
    /// Every key table's counters.
    fn tables(&self) -> Vec<TableReport>;
    /// The Redis counters, in fleet mode.
    fn redis(&self) -> Option<RedisReport>;
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Decisions by route and outcome.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Responses by route and status.
    pub responses: Family<ResponseLabels, Counter>,
    /// Requests in flight to each upstream.
    pub in_flight: Family<UpstreamLabels, Gauge>,
    /// Seconds from sending a request to the upstream to its response head.
    pub upstream_latency: Family<UpstreamLabels, Histogram>,
    /// Upstream failures by kind.
    pub upstream_errors: Family<UpstreamErrorLabels, Counter>,
    /// Client connections open now.
    pub connections: Gauge,
    /// Client connections refused by the connection cap.
    pub connections_refused: Counter,
    /// Connections closed by the idle or write deadline.
    pub connections_timed_out: Counter,
    /// Access-log lines dropped because the writer fell behind.
    pub log_dropped: Counter,
    /// Configuration reloads by result.
    pub reloads: Family<Vec<(String, String)>, Counter>,
}

#[derive(Debug)]
struct TableCollector(Arc<dyn Source>);

fn gauge_family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(String, u64)],
    counter: bool,
) -> Result<(), std::fmt::Error> {
    let kind = if counter {
        ConstCounter::new(0u64).metric_type()
    } else {
        ConstGauge::new(0i64).metric_type()
    };
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (label, v) in rows {
        let labels = [("table", label.as_str())];
        let m = family.encode_family(&labels)?;
        if counter {
            ConstCounter::new(*v).encode(m)?;
        } else {
            ConstGauge::new(i64::try_from(*v).unwrap_or(i64::MAX)).encode(m)?;
        }
    }
    Ok(())
}

impl Collector for TableCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let tables = self.0.tables();
        let rows = |f: fn(&TableReport) -> u64| -> Vec<(String, u64)> {
            tables.iter().map(|t| (t.name.clone(), f(t))).collect()
        };
        gauge_family(
            &mut encoder,
            "tollgate_table_slots",
            "Slots of each key table",
            &rows(|t| t.stats.capacity as u64),
            false,
        )?;
        gauge_family(
            &mut encoder,
            "tollgate_table_occupied",
            "Slots holding a key now",
            &rows(|t| t.stats.occupied),
            false,
        )?;
        gauge_family(
            &mut encoder,
            "tollgate_table_reclaimed",
            "Slots taken over from a drained key since the table was built",
            &rows(|t| t.stats.reclaimed),
            true,
        )?;
        gauge_family(
            &mut encoder,
            "tollgate_table_rejected",
            "Decisions answered by the full-table policy since the table was built",
            &rows(|t| t.stats.rejected),
            true,
        )?;
        if let Some(r) = self.0.redis() {
            for (name, help, v) in [
                (
                    "tollgate_redis_round_trips",
                    "Round trips to Redis",
                    r.round_trips,
                ),
                (
                    "tollgate_redis_failures",
                    "Round trips that failed or timed out",
                    r.failures,
                ),
                (
                    "tollgate_redis_policy_answers",
                    "Decisions answered by the failure policy",
                    r.policy_answers,
                ),
                (
                    "tollgate_redis_local_denials",
                    "Hybrid mode: denials answered by the local mirror",
                    r.local_denials,
                ),
            ] {
                let c = ConstCounter::new(v);
                let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
                c.encode(m)?;
            }
        }
        Ok(())
    }
}

impl Metrics {
    /// The metrics, with the tables read from `source` at each scrape.
    pub fn new(source: Arc<dyn Source>) -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let responses = Family::<ResponseLabels, Counter>::default();
        let in_flight = Family::<UpstreamLabels, Gauge>::default();
        let upstream_latency = Family::<UpstreamLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let connections = Gauge::default();
        let connections_refused = Counter::default();
        let connections_timed_out = Counter::default();
        let log_dropped = Counter::default();
        let reloads = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "tollgate_decisions",
            "Rate decisions by route and outcome",
            decisions.clone(),
        );
        registry.register(
            "tollgate_responses",
            "Responses by route and status",
            responses.clone(),
        );
        registry.register(
            "tollgate_in_flight",
            "Requests in flight to each upstream",
            in_flight.clone(),
        );
        registry.register(
            "tollgate_upstream_latency_seconds",
            "Time from sending a request to the upstream to its response head",
            upstream_latency.clone(),
        );
        registry.register(
            "tollgate_upstream_errors",
            "Upstream failures: connect (502), timeout (504), other (502)",
            upstream_errors.clone(),
        );
        registry.register(
            "tollgate_connections",
            "Client connections open now",
            connections.clone(),
        );
        registry.register(
            "tollgate_connections_refused",
            "Client connections refused by the connection cap",
            connections_refused.clone(),
        );
        registry.register(
            "tollgate_connections_timed_out",
            "Client connections closed by the idle or write deadline",
            connections_timed_out.clone(),
        );
        registry.register(
            "tollgate_access_log_dropped",
            "Access-log lines dropped because the writer fell behind",
            log_dropped.clone(),
        );
        registry.register(
            "tollgate_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        registry.register_collector(Box::new(TableCollector(source)));
        Metrics {
            registry,
            decisions,
            responses,
            in_flight,
            upstream_latency,
            upstream_errors,
            connections,
            connections_refused,
            connections_timed_out,
            log_dropped,
            reloads,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One access-log line.
#[derive(Debug, Default, Serialize)]
pub struct Entry {
    /// Milliseconds since the Unix epoch at the end of the request.
    pub ts_ms: u64,
    /// The client's address.
    pub client: String,
    /// The method.
    pub method: String,
    /// The normalised path (the raw one if it was refused).
    pub path: String,
    /// The route, if one matched.
    pub route: Option<String>,
    /// The response status.
    pub status: u16,
    /// The rate decision, if one was made (the decision labels' outcome).
    pub decision: Option<&'static str>,
    /// The caller's tier.
    pub tier: Option<String>,
    /// Milliseconds to the upstream's response head.
    pub upstream_ms: Option<f64>,
    /// Milliseconds from the request head to the response head.
    pub total_ms: f64,
    /// Why the gateway answered itself, if it did.
    pub reason: Option<&'static str>,
}

/// The access log's writer.
#[derive(Debug)]
pub struct Log {
    tx: Option<Mutex<SyncSender<Vec<u8>>>>,
    dropped: AtomicU64,
}

impl Log {
    /// A log to `dest`, written by a thread of its own.
    pub fn new(dest: &AccessLog) -> std::io::Result<Log> {
        let mut out: Box<dyn Write + Send> = match dest {
            AccessLog::Off => {
                return Ok(Log {
                    tx: None,
                    dropped: AtomicU64::new(0),
                })
            }
            AccessLog::Stdout => Box::new(std::io::stdout()),
            AccessLog::Stderr => Box::new(std::io::stderr()),
            AccessLog::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(16_384);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buf = std::io::BufWriter::new(&mut out);
                while let Ok(line) = rx.recv() {
                    let _ = buf.write_all(&line);
                    while let Ok(more) = rx.try_recv() {
                        let _ = buf.write_all(&more);
                    }
                    let _ = buf.flush();
                }
            })?;
        Ok(Log {
            tx: Some(Mutex::new(tx)),
            dropped: AtomicU64::new(0),
        })
    }

    /// `true` if lines are written anywhere.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one line; `false` if it was dropped.
    pub fn write(&self, entry: &Entry) -> bool {
        let Some(tx) = &self.tx else { return true };
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return false;
        };
        line.push(b'\n');
        let sent = tx
            .lock()
            .map_or(Err(TrySendError::Disconnected(Vec::new())), |tx| {
                tx.try_send(line)
            });
        if sent.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}
