data "aws_caller_identity" "current" {}

locals {
  environment = "prod"

  tags = {
    Project     = "trainstack"
    Environment = local.environment
    ManagedBy   = "terraform"
  }
}

module "naming" {
  source = "../../modules/naming"

  prefix        = var.prefix
  environment   = local.environment
  bucket_suffix = var.bucket_suffix != "" ? var.bucket_suffix : data.aws_caller_identity.current.account_id
  gpu_pools     = var.gpu_pools
}

module "platform" {
  source = "../../modules/platform"

  cluster_name    = module.naming.cluster_name
  bucket_names    = module.naming.bucket_names
  rds_identifier  = module.naming.rds_identifier
  iam_role_names  = module.naming.iam_role_names
  gpu_node_groups = module.naming.gpu_node_groups

  cluster_version                      = var.cluster_version
  cluster_endpoint_public_access_cidrs = var.api_allowed_cidrs
  cluster_admin_arns                   = var.cluster_admin_arns

  # prod: one NAT gateway per AZ, so losing an AZ does not cut the others off the internet.
  single_nat_gateway = false

  # prod: the source plan's database: db.t3.small, Multi-AZ (standby with automatic failover),
  # encrypted. Deleting it needs deletion protection turned off first, and leaves a snapshot.
  rds_multi_az              = true
  rds_backup_retention_days = 14
  rds_deletion_protection   = true
  rds_skip_final_snapshot   = false
  force_destroy_buckets     = var.force_destroy_buckets

  platform_namespace       = var.platform_namespace
  trainer_service_accounts = var.trainer_service_accounts

  tags = local.tags
}
