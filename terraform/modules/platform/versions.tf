terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # terraform-aws-modules/eks 20.37 needs >= 5.95 and < 6.0.
      version = ">= 5.95, < 6.0"
    }
  }
}
