//! The Python servers the tests start get ports nothing else takes, count as started only when
//! every server of theirs listens, and a server that dies under a test is reported with its log.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::support::ports::{free_port, free_ports, lock_name};
use crate::support::pyservers::{self, PyServer};
use crate::support::pytools;

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    }
}

#[test]
fn test_server_ports_lie_outside_the_ephemeral_and_ray_worker_ranges_and_are_never_handed_out_twice() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u16> = range.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let mut ports: Vec<u16> = free_ports(64).collect();
    ports.extend((0..64).map(|_| free_port()));
    for port in &ports {
        assert!(!(bounds[0]..=bounds[1]).contains(port), "{port} is in the ephemeral range {range}");
        assert!(*port > 19999, "{port} is in Ray's worker port range");
    }
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "a port was handed out twice: {ports:?}");
    // Another test process cannot take them: each one's lock is held.
    for port in [ports[0], ports[127]] {
        let name = SocketAddr::from_abstract_name(lock_name(port)).unwrap();
        let taken = UnixDatagram::bind_addr(&name).expect_err("the port's lock is free");
        assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse, "{port}: {taken}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ray_head_whose_client_server_cannot_bind_fails_to_start_with_ray_s_account_of_it() {
    // Bound but not listening, as a port another process's socket holds: the Ray Client server
    // cannot bind it, and `ray start --block` then takes the whole head down.
    let port = free_port();
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind(([127, 0, 0, 1], port).into()).unwrap();
    let bin = pytools::pyenv().join("bin");
    let started = tokio::spawn(async move { pyservers::ray_head_with_client_port(&bin, port).await }).await;
    let message = match started {
        Ok(head) => panic!("{head:?} counted as started though its client server cannot bind"),
        Err(e) => panic_message(e.into_panic()),
    };
    assert!(message.contains("exited with"), "{message}");
    assert!(message.contains("ray_client_server"), "Ray's own account is in the log tail:\n{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ray_head_that_dies_during_a_test_is_reported_with_its_log_tail() {
    let head: PyServer = pyservers::ray_head().await;
    head.assert_running();
    let client = head.process_running("ray.util.client.server").expect("the head runs a Ray Client server");
    std::process::Command::new("kill").args(["-KILL", &client.to_string()]).status().unwrap();
    // `ray start --block` looks at its subprocesses once a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let message = loop {
        match std::panic::catch_unwind(AssertUnwindSafe(|| head.assert_running())) {
            Err(payload) => break panic_message(payload),
            Ok(()) => assert!(Instant::now() < deadline, "the head outlived its Ray Client server"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(message.contains("ray on 127.0.0.1:") && message.contains("during the test"), "{message}");
    assert!(message.contains("ray_client_server"), "the log tail names the process that died:\n{message}");
}
