//! Ports for the servers the tests start, handed out once per run from a range nothing else
//! on the machine takes on its own.
//!
//! A port found free by binding port 0 lies in the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), so between the test dropping its probe socket
//! and the server binding the number (seconds for a Python server on a loaded machine) any
//! `bind(0)` on the machine may get it: another test's server, or the Ray head's own GCS,
//! raylet and agents, which all bind port 0. The kernel never picks a port outside that range
//! by itself, and Ray keeps its worker ports in 10002-19999, so ports above both are only ever
//! bound by whoever was handed them here. Test binaries running side by side (each engineer's
//! and the full suite) keep apart through an abstract Unix socket named after each port, held
//! until the process exits: the kernel frees it with the process, and like the port it belongs
//! to the network namespace.

use std::ops::Range;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;

/// Ray's default worker ports; Ray rejects its own servers' ports inside them.
const RAY_WORKER_PORTS_END: u16 = 19999;

struct Allocator {
    /// Where this process looks next; it only moves up, so no port is handed out twice.
    next: u16,
    end: u16,
    /// Held for the whole run so other test processes skip these ports.
    locks: Vec<UnixDatagram>,
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// One port no process listens on and no other test process was given; nothing binds it
/// unless this process starts a server on it.
pub fn free_port() -> u16 {
    free_ports(1).start
}

/// `count` consecutive ports as [`free_port`] hands them out (Ray's worker port range).
pub fn free_ports(count: u16) -> Range<u16> {
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    let allocator = guard.get_or_insert_with(Allocator::new);
    'block: loop {
        let start = allocator.next;
        let end = start
            .checked_add(count)
            .filter(|e| *e <= allocator.end)
            .unwrap_or_else(|| panic!("no {count} free test ports left below {}", allocator.end));
        let mut held = Vec::new();
        for port in start..end {
            allocator.next = port + 1;
            match claim(port) {
                Some(lock) => held.push(lock),
                None => continue 'block,
            }
        }
        allocator.locks.extend(held);
        return start..end;
    }
}

impl Allocator {
    /// The larger of the spans between Ray's worker ports and the ephemeral range, and above
    /// the ephemeral range; each process starts at its own point in it so concurrent runs
    /// rarely ask for the same lock.
    fn new() -> Allocator {
        let (low, high) = ephemeral_range();
        let below = (RAY_WORKER_PORTS_END + 1)..low.max(RAY_WORKER_PORTS_END + 1);
        let above = high.saturating_add(1).max(RAY_WORKER_PORTS_END + 1)..u16::MAX;
        let span = if below.len() >= above.len() { below } else { above };
        assert!(span.len() >= 1024, "no room for test ports outside the ephemeral range {low}-{high}");
        let offset = (std::process::id() as usize * 157) % (span.len() / 2);
        Allocator { next: span.start + offset as u16, end: span.end, locks: Vec::new() }
    }
}

fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut numbers = text.split_whitespace().filter_map(|n| n.parse::<u16>().ok());
    match (numbers.next(), numbers.next()) {
        (Some(low), Some(high)) => (low, high),
        // Linux's default.
        _ => (32768, 60999),
    }
}

/// The name whose socket a test process holds while `port` is its.
pub fn lock_name(port: u16) -> String {
    format!("trainstack-test-port-{port}")
}

/// The lock of `port` when no other test process holds it and nothing listens on it now.
fn claim(port: u16) -> Option<UnixDatagram> {
    let name = SocketAddr::from_abstract_name(lock_name(port)).ok()?;
    let lock = UnixDatagram::bind_addr(&name).ok()?;
    std::net::TcpListener::bind(("127.0.0.1", port)).ok()?;
    Some(lock)
}
