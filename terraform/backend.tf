# One root for every environment: each keeps its own state, named by its backend config file
# (envs/<env>/backend.tfbackend, passed as `terraform init -backend-config=...`). Local state
# by default; for a team, change "local" to "s3" here and put the S3 settings in each
# environment's backend.tfbackend instead (the example there shows them).
terraform {
  backend "local" {}
}
