terraform {
  # 1.11: write-only attributes keep the generated MLflow admin password out of state (secrets.tf).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # terraform-aws-modules/eks 20.37 needs >= 5.95 and < 6.0.
      version = ">= 5.95, < 6.0"
    }
  }
}
