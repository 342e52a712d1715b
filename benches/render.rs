//! Render benchmark: a generated environment with 100 tenants and 1000 TrainJob specs.
//! Reports wall time per full render (load, check, template, serialise) and the process's
//! peak resident memory. Run with `cargo bench --bench render` (or `just bench`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use trainstack::env::{self, LoadOptions};
use trainstack::render::{self, Templates};
use trainstack::{jobs, manifest};

const TENANTS: usize = 100;
const JOBS: usize = 1000;
const RUNS: usize = 5;

fn generate(dir: &std::path::Path) -> PathBuf {
    let mut env = String::from(
        "name: bench\ntarget:\n  kind: eks\n  cluster_name: bench\n  region: us-east-1\n\
         components:\n  trainer:\n    jobs_dir: jobs\n  gpu:\n    enabled: true\n    provider: karpenter\n    pools:\n      - name: gpu\n\
         \x20 mlflow:\n    enabled: true\n  ray:\n    enabled: true\n  tenants:\n    defaults:\n      quota: {cpu: \"64\", memory: 256Gi, gpu: 16, pods: 200}\n    list:\n",
    );
    for t in 0..TENANTS {
        env.push_str(&format!("      - name: tenant-{t}\n"));
    }
    std::fs::write(dir.join("env.yaml"), env).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    for j in 0..JOBS {
        let framework = if j % 2 == 0 { "pytorch" } else { "tensorflow" };
        let gpu = if j % 4 == 0 { "  gpu: {request: 1, limit: 1}\n" } else { "" };
        let spec = format!(
            "name: job-{j}\ntenant: tenant-{t}\nframework: {framework}\nnum_nodes: {n}\n\
             resources:\n  cpu: {{request: \"2\", limit: \"4\"}}\n  memory: {{request: 8Gi, limit: 16Gi}}\n{gpu}\
             command: [python, /workspace/scripts/train-{j}.py]\nenv:\n  STEPS: \"100\"\n\
             scripts:\n  train-{j}.py: {{content: \"print('job {j}')\\n\"}}\n\
             volumes:\n  dataset_pvc: datasets\n  models_pvc: models\n",
            t = j % TENANTS,
            n = 1 + j % 4,
        );
        std::fs::write(dir.join(format!("jobs/job-{j:04}.yaml")), spec).unwrap();
    }
    dir.join("env.yaml")
}

fn render_once(env_file: &PathBuf) -> (usize, usize) {
    // The bench environment references no Terraform output: there is nothing to fetch.
    let layered = env::read(std::slice::from_ref(env_file), &LoadOptions::default()).expect("readable");
    let loaded = layered.load(None).expect("valid environment");
    let jobs = jobs::load(&loaded).expect("valid jobs");
    let templates = Templates::load(None).expect("templates");
    let batches = trainstack::hpo::load(&loaded).expect("valid trial batches");
    let specs = render::Specs { jobs: &jobs, batches: &batches };
    let set = render::render(&loaded, specs, &templates, Vec::new()).expect("render");
    let text = manifest::to_stream(&set);
    (set.len(), text.len())
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = generate(dir.path());
    let mut times: Vec<Duration> = Vec::new();
    let mut summary = (0, 0);
    for _ in 0..RUNS {
        let start = Instant::now();
        summary = render_once(&env_file);
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "render {TENANTS} tenants + {JOBS} TrainJobs: {} objects, {} bytes of YAML",
        summary.0, summary.1
    );
    println!(
        "wall time over {RUNS} runs: min {:.3} s, median {:.3} s, max {:.3} s",
        times[0].as_secs_f64(),
        times[RUNS / 2].as_secs_f64(),
        times[RUNS - 1].as_secs_f64()
    );
    match peak_rss_kib() {
        Some(k) => println!("peak resident memory: {:.1} MiB", k as f64 / 1024.0),
        None => println!("peak resident memory: unavailable (no /proc/self/status)"),
    }
}
