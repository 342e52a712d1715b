data "aws_caller_identity" "current" {}

locals {
  tags = {
    Project     = "trainstack"
    Environment = var.environment
    ManagedBy   = "terraform"
  }
}

module "naming" {
  source = "./modules/naming"

  prefix        = var.prefix
  environment   = var.environment
  bucket_suffix = var.bucket_suffix != "" ? var.bucket_suffix : data.aws_caller_identity.current.account_id
  gpu_pools     = var.gpu_pools
}

module "platform" {
  source = "./modules/platform"

  cluster_name    = module.naming.cluster_name
  bucket_names    = module.naming.bucket_names
  rds_identifier  = module.naming.rds_identifier
  iam_role_names  = module.naming.iam_role_names
  gpu_node_groups = module.naming.gpu_node_groups

  cluster_version                      = var.cluster_version
  cluster_endpoint_public_access_cidrs = var.api_allowed_cidrs
  cluster_admin_arns                   = var.cluster_admin_arns

  single_nat_gateway = var.single_nat_gateway

  rds_multi_az              = var.rds_multi_az
  rds_backup_retention_days = var.rds_backup_retention_days
  rds_deletion_protection   = var.rds_deletion_protection
  rds_skip_final_snapshot   = var.rds_skip_final_snapshot
  force_destroy_buckets     = var.force_destroy_buckets

  enable_efs = var.enable_efs

  platform_namespace = var.platform_namespace

  tags = local.tags
}
