//! Process ids as a key table's claimants: a slot left busy by a process that has exited is
//! emptied by the next insertion that meets it.

use std::os::unix::fs::MetadataExt;

use rustix::io::Errno;
use rustix::process::Pid;

use crate::table::{Claimants, Table, TableQuota};

/// The processes of the region's pid namespace: a claim records the claimant's process id,
/// and a claimant is gone when the kernel says no process has that id (`kill(pid, 0)` fails
/// with `ESRCH`). A process id reused by a new process reads as alive: its slot then stays
/// busy until that process exits too, which is safe. An exited child that its parent has not
/// yet reaped (a zombie) also reads as alive until it is reaped.
pub(crate) struct Processes;

impl Claimants for Processes {
    fn current(&self) -> u32 {
        rustix::process::getpid()
            .as_raw_nonzero()
            .get()
            .unsigned_abs()
    }

    fn is_gone(&self, id: u32) -> bool {
        let Some(pid) = i32::try_from(id).ok().and_then(Pid::from_raw) else {
            return false;
        };
        rustix::process::test_kill_process(pid) == Err(Errno::SRCH)
    }
}

/// A process in another pid namespace than the region's creator (or where namespaces cannot be
/// told apart): its process ids mean nothing to the others, so its claims are never undone and
/// it undoes no one's.
pub(crate) struct Foreign;

impl Claimants for Foreign {
    fn current(&self) -> u32 {
        0
    }

    fn is_gone(&self, _id: u32) -> bool {
        false
    }
}

/// The calling process's pid namespace (the inode of `/proc/self/ns/pid`), or 0 if unknown.
/// Read once per process (a process that enters another pid namespace keeps the first).
pub(crate) fn pid_namespace() -> u64 {
    static MINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MINE.get_or_init(|| std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino()))
}

/// Marks `table` as claimed by process ids of this process's pid namespace: records the
/// namespace in its header ([`Table::claim_namespace`]), so every handle made with
/// [`table_claimants`] — the shared regions', the C ABI's, and through it Python's and nginx's —
/// records the claiming process's id in each busy slot and empties a busy slot whose process is
/// gone. A table initialised in memory the caller provides (`tg_table_init_*`) is marked this
/// way; the shared regions mark theirs when they create them.
///
/// Call it right after initialising the table, before any other handle on it exists: a handle
/// made earlier has no claimants. Where the namespace cannot be read (no `/proc`), nothing is
/// recorded and the table's claims carry no process ids, as before.
pub fn record_process_claims<Q: TableQuota>(table: &Table<'_, Q>) {
    table.record_claim_namespace(pid_namespace());
}

/// The claimants for a handle on `table`: `None` if its claims record no process ids (a table
/// not made by a shared region), process ids if this process is in the pid namespace they were
/// recorded for, else claims that are never undone.
pub fn table_claimants<Q: TableQuota>(table: &Table<'_, Q>) -> Option<&'static dyn Claimants> {
    static PROCESSES: Processes = Processes;
    static FOREIGN: Foreign = Foreign;
    let recorded = table.claim_namespace();
    if recorded == 0 {
        return None;
    }
    let mine = pid_namespace();
    Some(if mine != 0 && mine == recorded {
        &PROCESSES
    } else {
        &FOREIGN
    })
}
