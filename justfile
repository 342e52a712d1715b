# trainstack developer recipes. `just --list` shows them.

# Everything CI runs (the README's test command).
test:
    bash tests/run.sh

# Unit and integration tests only.
test-fast:
    cargo test

# Tests that need a real cluster (tests/real_cluster.rs, `#[ignore = "needs cluster"]`): the kind
# lifecycle `up` (cluster create, apply, smoke), `diff` in sync, `smoke`, a second `apply` that
# writes nothing, `down`. Needs kind, docker, kubectl (kustomize add-ons) and network access;
# creates and deletes kind cluster `trainstack` (context $TRAINSTACK_TEST_CONTEXT, default
# kind-trainstack). Takes 10-20 minutes, mostly image pulls.
test-cluster:
    cargo test --test main -- --ignored --nocapture --test-threads 1

# Render a shipped environment, e.g. `just render kind`.
render env="kind":
    cargo run -q -- render -e environments/base.yaml -e environments/{{env}}.yaml --no-addons

# Accept changed insta snapshots after reviewing them.
snapshots:
    INSTA_UPDATE=always cargo test

# Benchmarks: render of 100 tenants and 1000 TrainJobs (wall time, peak memory), and apply,
# no-op apply and diff of ~2000 objects against the API double with 5 ms latency, and apply under
# max-in-flight throttling (3 reads / 1 write, Retry-After: 1) at concurrency 1 and 8.
bench:
    cargo bench --bench render
    cargo bench --bench apply

# Install the Python tools the tests start (moto, MLflow, Ray, Optuna) into target/pyenv.
pyenv:
    python3 -m venv target/pyenv
    target/pyenv/bin/python -m pip install --quiet -r tests/requirements.txt
    cp tests/requirements.txt target/pyenv/.requirements

# The src/ module dependencies (module -> modules it imports) and their cycles; fails on a
# cycle not listed in tests/architecture.rs, and on a listed one that is gone.
deps:
    cargo test --test main architecture:: -- --nocapture
