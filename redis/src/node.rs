//! Where commands go: one Redis server (a pool of connections with its own circuit), or a Redis
//! Cluster (one such pool per primary, found by `CLUSTER SLOTS`, each key sent to the primary
//! of its slot).
//!
//! Every script touches exactly one key, its `KEYS[1]`, so each command is routed alone; a
//! batch becomes one pipeline per node. A node that is down or late answers only the requests
//! whose keys it holds (by the failure policy) and only its own circuit opens: keys on the
//! other primaries keep their exact answers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, RedisResult, Value};

use crate::conn::{Conn, Target};
use crate::limiter::{GCRA_LUA, WINDOW_LUA};

/// The counters a node reports into (the limiter's).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) round_trips: AtomicU64,
    pub(crate) failures: AtomicU64,
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One server: a small pool of connections and a circuit.
pub(crate) struct Node {
    target: Target,
    slots: Vec<Mutex<Option<Conn>>>,
    next_slot: AtomicUsize,
    epoch: Instant,
    /// Nanoseconds since `epoch` before which this node is not tried again.
    down_until: AtomicU64,
    /// A reply said `NOSCRIPT`: the next round trip loads the scripts first.
    needs_reload: AtomicBool,
}

impl Node {
    pub(crate) fn new(target: Target, connections: usize) -> Node {
        Node {
            target,
            slots: (0..connections).map(|_| Mutex::new(None)).collect(),
            next_slot: AtomicUsize::new(0),
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            needs_reload: AtomicBool::new(false),
        }
    }

    pub(crate) fn reload_scripts(&self) {
        self.needs_reload.store(true, Ordering::Relaxed);
    }

    /// A free connection slot, waiting for one at most until `deadline` (every slot may be held
    /// by a call that waits on a slow Redis).
    fn slot(&self, deadline: Instant) -> Option<MutexGuard<'_, Option<Conn>>> {
        let n = self.slots.len();
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let mut pause = Duration::from_micros(10);
        loop {
            for i in 0..n {
                match self.slots[(start + i) % n].try_lock() {
                    Ok(guard) => return Some(guard),
                    Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }

    /// One pipelined round trip of `n` commands within `deadline`; on failure (recorded) the
    /// circuit opens for `retry_interval`, except when only the pool was busy. `Err(true)`:
    /// the node was tried and failed; `Err(false)`: not tried (open circuit, busy pool).
    pub(crate) fn round_trip(
        &self,
        packed: &[u8],
        n: usize,
        deadline: Instant,
        retry_interval: Duration,
        counters: &Counters,
    ) -> Result<Vec<Value>, bool> {
        let elapsed = duration_nanos(self.epoch.elapsed());
        if elapsed < self.down_until.load(Ordering::Relaxed) {
            return Err(false);
        }
        let Some(mut slot) = self.slot(deadline) else {
            // Every connection is busy past the deadline: answer by the policy, but this says
            // nothing about Redis, so the circuit stays closed.
            counters.failures.fetch_add(1, Ordering::Relaxed);
            return Err(false);
        };
        match self.try_round_trip(&mut slot, packed, n, deadline) {
            Ok(v) => {
                counters.round_trips.fetch_add(1, Ordering::Relaxed);
                return Ok(v);
            }
            Err(e) => log::warn!("tollgate-redis: {} unreachable: {e}", self.target),
        }
        // Whatever state the connection is in (a late reply may still come), it goes.
        *slot = None;
        counters.failures.fetch_add(1, Ordering::Relaxed);
        let until =
            duration_nanos(self.epoch.elapsed()).saturating_add(duration_nanos(retry_interval));
        self.down_until.store(until, Ordering::Relaxed);
        Err(true)
    }

    fn try_round_trip(
        &self,
        slot: &mut Option<Conn>,
        packed: &[u8],
        n: usize,
        deadline: Instant,
    ) -> RedisResult<Vec<Value>> {
        let reload = self.needs_reload.swap(false, Ordering::Relaxed);
        if slot.is_none() || reload {
            if slot.is_none() {
                *slot = Some(Conn::open(&self.target, deadline)?);
            }
            let Some(conn) = slot.as_mut() else {
                return Err(RedisError::from((ErrorKind::IoError, "no connection")));
            };
            let loads = redis::pipe()
                .cmd("SCRIPT")
                .arg("LOAD")
                .arg(GCRA_LUA)
                .cmd("SCRIPT")
                .arg("LOAD")
                .arg(WINDOW_LUA)
                .get_packed_pipeline();
            for reply in conn.exchange(&loads, 2, deadline)? {
                if let Value::ServerError(e) = reply {
                    return Err(e.into());
                }
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Err(RedisError::from((ErrorKind::IoError, "no connection")));
        };
        conn.exchange(packed, n, deadline)
    }

    /// One command outside the pool's circuit (cluster discovery), by `deadline`.
    fn query(&self, cmd: &redis::Cmd, deadline: Instant) -> RedisResult<Value> {
        let mut slot = self
            .slot(deadline)
            .ok_or_else(|| RedisError::from((ErrorKind::IoError, "no free connection")))?;
        if slot.is_none() {
            *slot = Some(Conn::open(&self.target, deadline)?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(RedisError::from((ErrorKind::IoError, "no connection")));
        };
        let reply = conn.exchange(&cmd.get_packed_command(), 1, deadline);
        if reply.is_err() {
            *slot = None;
        }
        match reply?.pop() {
            Some(Value::ServerError(e)) => Err(e.into()),
            Some(v) => Ok(v),
            None => Err(RedisError::from((ErrorKind::ResponseError, "no reply"))),
        }
    }
}

/// A cluster's slot map: the primary of every slot range.
#[derive(Default)]
pub(crate) struct SlotMap {
    /// (first slot, last slot, index into `nodes`), sorted by first slot.
    ranges: Vec<(u16, u16, usize)>,
    nodes: Vec<Arc<Node>>,
}

/// The servers behind a limiter.
pub(crate) enum Topology {
    Single(Node),
    Cluster {
        seeds: Vec<Target>,
        connections: usize,
        map: RwLock<SlotMap>,
        /// A `MOVED` reply or a node failure: discover the map again before the next round.
        stale: AtomicBool,
    },
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the part
/// between the first `{` and the next `}`, when not empty), mod 16384.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % 16384
}

impl Topology {
    pub(crate) fn single(target: Target, connections: usize) -> Topology {
        Topology::Single(Node::new(target, connections))
    }

    pub(crate) fn cluster(seeds: Vec<Target>, connections: usize) -> Topology {
        Topology::Cluster {
            seeds,
            connections,
            map: RwLock::new(SlotMap::default()),
            stale: AtomicBool::new(true),
        }
    }

    /// Marks the slot map for rediscovery (after `MOVED`/`ASK` or a failed node).
    pub(crate) fn topology_changed(&self) {
        if let Topology::Cluster { stale, .. } = self {
            stale.store(true, Ordering::Relaxed);
        }
    }

    /// A reply from `node` (`None`: the single server) said `NOSCRIPT`.
    pub(crate) fn reload_scripts(&self, node: Option<&Arc<Node>>) {
        match (self, node) {
            (Topology::Single(single), _) => single.reload_scripts(),
            (Topology::Cluster { .. }, Some(node)) => node.reload_scripts(),
            (Topology::Cluster { .. }, None) => {}
        }
    }

    /// Sends each command to the node that holds its key, one pipeline per node, by `deadline`.
    /// The answer for each command: its reply, or `None` when its node could not be reached,
    /// with the node that answered (for `NOSCRIPT`).
    pub(crate) fn exchange(
        &self,
        commands: &[(redis::Cmd, &str)],
        deadline: Instant,
        retry_interval: Duration,
        counters: &Counters,
    ) -> Vec<Option<(Value, Option<Arc<Node>>)>> {
        match self {
            Topology::Single(node) => {
                // Not `Pipeline::query`, which fails the whole pipeline on one command's error:
                // each reply is read on its own (a `ServerError` answers its request alone).
                let mut pipe = redis::pipe();
                for (cmd, _) in commands {
                    pipe.add_command(cmd.clone());
                }
                let packed = pipe.get_packed_pipeline();
                let replies =
                    node.round_trip(&packed, commands.len(), deadline, retry_interval, counters);
                match replies {
                    Ok(v) => v.into_iter().map(|r| Some((r, None))).collect(),
                    Err(_) => commands.iter().map(|_| None).collect(),
                }
            }
            Topology::Cluster {
                seeds,
                connections,
                map,
                stale,
            } => {
                if stale.swap(false, Ordering::Relaxed) {
                    if let Err(e) = discover(seeds, *connections, map, deadline) {
                        log::warn!("tollgate-redis: cluster discovery failed: {e}");
                        stale.store(true, Ordering::Relaxed);
                    }
                }
                let map = map
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let node_of = |key: &str| {
                    let slot = key_slot(key.as_bytes());
                    let i = map.ranges.partition_point(|r| r.0 <= slot);
                    i.checked_sub(1)
                        .map(|i| map.ranges[i])
                        .filter(|r| slot <= r.1)
                        .map(|r| r.2)
                };
                let mut out: Vec<Option<(Value, Option<Arc<Node>>)>> = vec![None; commands.len()];
                let mut by_node: Vec<Vec<usize>> = vec![Vec::new(); map.nodes.len()];
                for (i, (_, key)) in commands.iter().enumerate() {
                    match node_of(key) {
                        Some(n) => by_node[n].push(i),
                        None => stale.store(true, Ordering::Relaxed),
                    }
                }
                for (n, indices) in by_node.iter().enumerate() {
                    if indices.is_empty() {
                        continue;
                    }
                    let node = &map.nodes[n];
                    let mut pipe = redis::pipe();
                    for &i in indices {
                        pipe.add_command(commands[i].0.clone());
                    }
                    let packed = pipe.get_packed_pipeline();
                    match node.round_trip(
                        &packed,
                        indices.len(),
                        deadline,
                        retry_interval,
                        counters,
                    ) {
                        Ok(replies) => {
                            for (&i, reply) in indices.iter().zip(replies) {
                                out[i] = Some((reply, Some(Arc::clone(node))));
                            }
                        }
                        // The node may have failed over: look again next time (at most once per
                        // retry interval: meanwhile its circuit is open and it is not tried).
                        Err(true) => stale.store(true, Ordering::Relaxed),
                        Err(false) => {}
                    }
                }
                out
            }
        }
    }
}

/// Reads `CLUSTER SLOTS` from the first seed (or known node) that answers, and rebuilds the map,
/// keeping the pools of nodes that are still primaries.
fn discover(
    seeds: &[Target],
    connections: usize,
    map: &RwLock<SlotMap>,
    deadline: Instant,
) -> RedisResult<()> {
    let known: Vec<Arc<Node>> = map
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .nodes
        .clone();
    let candidates: Vec<Arc<Node>> = known
        .iter()
        .cloned()
        .chain(seeds.iter().map(|t| Arc::new(Node::new(t.clone(), 1))))
        .collect();
    let mut last = RedisError::from((ErrorKind::IoError, "no cluster node answered"));
    for node in candidates {
        let reply = match node.query(redis::cmd("CLUSTER").arg("SLOTS"), deadline) {
            Ok(r) => r,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let Value::Array(entries) = reply else {
            return Err(RedisError::from((
                ErrorKind::ResponseError,
                "CLUSTER SLOTS: not an array",
            )));
        };
        let mut ranges = Vec::new();
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        for entry in entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let (Some(Value::Int(first)), Some(Value::Int(last_slot)), Some(Value::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                continue;
            };
            let (Some(host), Some(Value::Int(port))) = (primary.first(), primary.get(1)) else {
                continue;
            };
            let host = match host {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => continue,
            };
            let target = seeds[0].with_address(&host, u16::try_from(*port).unwrap_or(0));
            let index = if let Some(i) = nodes.iter().position(|n| n.target.same_address(&target)) {
                i
            } else {
                let reused = known.iter().find(|n| n.target.same_address(&target));
                nodes.push(
                    reused.map_or_else(|| Arc::new(Node::new(target, connections)), Arc::clone),
                );
                nodes.len() - 1
            };
            ranges.push((
                u16::try_from(*first).unwrap_or(0),
                u16::try_from(*last_slot).unwrap_or(0),
                index,
            ));
        }
        ranges.sort_unstable();
        *map.write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = SlotMap { ranges, nodes };
        return Ok(());
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn key_slots_are_redis_clusters() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        // A hash tag: only the part in the first non-empty braces counts.
        assert_eq!(key_slot(b"a{b}c"), 3300);
        assert_eq!(key_slot(b"b"), 3300);
        // Empty braces are no tag: the whole key is hashed.
        assert_eq!(key_slot(b"{}foo"), 9500);
        assert_eq!(key_slot(b"a{}{b}"), 15033);
    }
}
