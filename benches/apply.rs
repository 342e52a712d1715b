//! Engine benchmark: the kind environment scaled to about 2000 objects, applied to the API
//! server double with 5 ms of latency per request. Reports apply, no-op apply and diff wall
//! time at concurrency 1 and at the default (8), and the writes of the no-op apply; then a
//! throttled apply, against a double that admits 3 reads and 1 write at a time (kube-apiserver's
//! `--max-requests-inflight=3 --max-mutating-requests-inflight=1`, 429 with `Retry-After: 1`
//! beyond), at both concurrencies, with the 429s it drew. The target: throttled apply at the
//! default concurrency takes at most twice as long as at concurrency 1.
//! Run with `cargo bench --bench apply` (or `just bench`).

// The double's own unit tests are compiled but not run here (harness = false).
#[allow(dead_code, unused_imports)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::apiserver::{ApiServer, MaxInFlight};
use trainstack::engine::ready::ClusterFacts;
use trainstack::engine::run::{Engine, Options};
use trainstack::output::progress::Bars;
use trainstack::settings::{AddonSettings, LoadSettings, PrepareSettings};

const TENANTS: usize = 150;
const LATENCY: Duration = Duration::from_millis(5);

fn upstream(file: &str) -> String {
    format!("{}/../shared/upstream/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn write_overlay(dir: &std::path::Path) -> PathBuf {
    let mut y = String::from("addons:\n");
    for (name, file) in [
        ("trainer-crds", "kubeflow-trainer-v2.3.0/trainer.kubeflow.org_clustertrainingruntimes.yaml"),
        ("trainjob-crds", "kubeflow-trainer-v2.3.0/trainer.kubeflow.org_trainjobs.yaml"),
        ("raycluster-crds", "kuberay-v1.7.0/ray.io_rayclusters.yaml"),
    ] {
        y.push_str(&format!(
            "  - name: {name}\n    version: v1.0.0\n    source: {{file: {}}}\n",
            upstream(file)
        ));
    }
    y.push_str("components:\n  tenants:\n    list:\n      - name: alice\n");
    for t in 0..TENANTS {
        y.push_str(&format!("      - name: tenant-{t}\n"));
    }
    let path = dir.join("scale.yaml");
    std::fs::write(&path, y).unwrap();
    path
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let settings = PrepareSettings {
        load: LoadSettings {
            files: vec![
                root.join("environments/base.yaml"),
                root.join("environments/kind.yaml"),
                write_overlay(dir.path()),
            ],
            terraform_outputs: None,
        },
        templates: None,
        addons: AddonSettings { skip: false, cache_dir: Some(dir.path().join("cache")) },
    };
    let prepared = trainstack::commands::prepare(&settings).await.expect("environment renders");
    let n = prepared.set.len();
    println!("kind environment with {} tenants: {n} objects, {LATENCY:?} latency per request", TENANTS + 2);

    let mut rows = Vec::new();
    for concurrency in [1usize, 8] {
        let server = ApiServer::start().await;
        server.set_latency(LATENCY);
        let opts = Options { concurrency, wait: false, ..Options::default() };
        let progress = Arc::new(Bars::new(false));
        let engine = Engine::new(
            client(&server, concurrency),
            "kind-dev",
            "trainstack-system",
            ClusterFacts::default(),
            opts,
            progress,
        );
        let (first, t_apply) = timed(engine.apply(&prepared.set)).await;
        let first = first.expect("apply");
        assert_eq!(first.summary.failed, 0, "first apply failed");
        server.reset_writes();
        let (noop, t_noop) = timed(engine.apply(&prepared.set)).await;
        noop.expect("no-op apply");
        let noop_writes = server.writes().total();
        let (diff, t_diff) = timed(engine.diff(&prepared.set)).await;
        assert!(!diff.expect("diff").has_changes());
        rows.push((concurrency, t_apply, t_noop, noop_writes, t_diff));
    }
    println!(
        "{:>11}  {:>9}  {:>13}  {:>15}  {:>9}",
        "concurrency", "apply", "no-op apply", "no-op writes", "diff"
    );
    for (c, a, n, w, d) in &rows {
        println!(
            "{c:>11}  {:>8.2}s  {:>12.2}s  {w:>15}  {:>8.2}s",
            a.as_secs_f64(),
            n.as_secs_f64(),
            d.as_secs_f64()
        );
    }
    let (one, eight) = (&rows[0], &rows[1]);
    println!(
        "speed-up at the default concurrency: apply {:.1}x, no-op apply {:.1}x, diff {:.1}x",
        one.1.as_secs_f64() / eight.1.as_secs_f64(),
        one.2.as_secs_f64() / eight.2.as_secs_f64(),
        one.4.as_secs_f64() / eight.4.as_secs_f64()
    );

    let limits = MaxInFlight { read: 3, mutating: 1 };
    println!(
        "throttled: at most {} reads and {} write in flight, 429 with Retry-After: 1 beyond",
        limits.read, limits.mutating
    );
    let mut throttled = Vec::new();
    for concurrency in [1usize, 8] {
        let server = ApiServer::builder().max_in_flight(limits).start().await;
        server.set_latency(LATENCY);
        let opts = Options { concurrency, wait: false, ..Options::default() };
        let engine = Engine::new(
            client(&server, concurrency),
            "kind-dev",
            "trainstack-system",
            ClusterFacts::default(),
            opts,
            Arc::new(Bars::new(false)),
        );
        let (report, t_apply) = timed(engine.apply(&prepared.set)).await;
        assert_eq!(report.expect("throttled apply").summary.failed, 0, "throttled apply failed");
        throttled.push((concurrency, t_apply, server.rejected_in_flight(), server.requests().len()));
    }
    println!("{:>11}  {:>9}  {:>9}  {:>9}", "concurrency", "apply", "429s", "requests");
    for (c, a, rejected, requests) in &throttled {
        println!("{c:>11}  {:>8.2}s  {rejected:>9}  {requests:>9}", a.as_secs_f64());
    }
    let ratio = throttled[1].1.as_secs_f64() / throttled[0].1.as_secs_f64();
    println!(
        "throttled apply at the default concurrency takes {ratio:.2}x the time at concurrency 1 (target: at most 2x): {}",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
}

/// A client as trainstack builds it for `--concurrency`.
fn client(server: &ApiServer, concurrency: usize) -> kube::Client {
    trainstack::connect::client_from(server.config(), concurrency).expect("client")
}
