# State is local (terraform.tfstate in this directory, git-ignored) until a backend is set.
# For a team, keep it in S3 with locking, for example:
#
# terraform {
#   backend "s3" {
#     bucket       = "<your-terraform-state-bucket>"
#     key          = "trainstack/eks-dev/terraform.tfstate"
#     region       = "us-east-1"
#     encrypt      = true
#     use_lockfile = true # S3-native locking (Terraform >= 1.10); older: dynamodb_table = "<table>"
#   }
# }
