# trainstack developer recipes. `just --list` shows them.

# Everything CI runs (the README's test command).
test:
    bash tests/run.sh

# Unit and integration tests only.
test-fast:
    cargo test

# Tests that need a real cluster (kind or EKS) reachable through the current kubeconfig.
test-cluster:
    cargo test -- --ignored

# Render a shipped environment, e.g. `just render kind`.
render env="kind":
    cargo run -q -- render -e environments/base.yaml -e environments/{{env}}.yaml --no-addons

# Accept changed insta snapshots after reviewing them.
snapshots:
    INSTA_UPDATE=always cargo test

# Benchmarks: render of 100 tenants and 1000 TrainJobs (wall time, peak memory), and apply,
# no-op apply and diff of ~2000 objects against the API double with 5 ms latency.
bench:
    cargo bench --bench render
    cargo bench --bench apply
