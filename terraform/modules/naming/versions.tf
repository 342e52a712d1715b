# Provider-free on purpose: this module is validated and tested offline
# (`terraform init -backend=false && terraform test`), so it holds only variables, locals and
# outputs. Do not add a provider or a resource that needs one.
terraform {
  required_version = ">= 1.6"
}
