#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh machine
# (Rust toolchain and Python 3 present), then runs every offline check and test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain components"
rustup component add clippy rustfmt >/dev/null 2>&1 || true

echo "== python test tools (moto, MLflow, Ray, Optuna) into target/pyenv"
pyenv="${TRAINSTACK_PYENV:-$PWD/target/pyenv}"
export TRAINSTACK_PYENV="$pyenv"
stamp="$pyenv/.requirements"
if ! cmp -s tests/requirements.txt "$stamp" 2>/dev/null; then
  python3 -m venv "$pyenv"
  "$pyenv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$stamp"
fi

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== terraform (offline: fmt, the provider-free naming module, each environment's settings)"
if ! command -v terraform >/dev/null; then
  echo "terraform is required for the offline Terraform checks (it ships with this machine image)" >&2
  exit 1
fi
terraform fmt -check -recursive terraform/
(
  cd terraform/modules/naming
  export TF_DATA_DIR
  TF_DATA_DIR="$(mktemp -d)"
  terraform init -backend=false -input=false >/dev/null
  terraform validate
  terraform test
)
# The shared root needs the AWS provider, but its variables alone do not: a plan of
# variables.tf by itself checks each environment's settings.tfvars offline (types, and every
# variable without a default set).
for settings in terraform/envs/*/settings.tfvars; do
  (
    work="$(mktemp -d)"
    cp terraform/variables.tf "$work/"
    cd "$work"
    terraform init -backend=false -input=false >/dev/null
    terraform plan -input=false -lock=false -var-file="$OLDPWD/$settings" >/dev/null
  ) || { echo "$settings does not fit terraform/variables.tf" >&2; exit 1; }
  echo "$settings fits terraform/variables.tf"
done

echo "== cargo test"
cargo test --locked
