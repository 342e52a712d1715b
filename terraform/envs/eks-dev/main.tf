data "aws_caller_identity" "current" {}

locals {
  environment = "dev"

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

  # dev: one NAT gateway shared by the three AZs. An AZ outage cuts the private subnets off
  # the internet, acceptable for dev and about $65/month cheaper than one per AZ.
  single_nat_gateway = true

  # The source plan's database: db.t3.small, Multi-AZ, encrypted. `rds_multi_az = false` drops
  # the standby of a disposable dev environment to halve the database cost.
  rds_multi_az              = var.rds_multi_az
  rds_backup_retention_days = 1
  # dev is disposable: `trainstack down` (terraform destroy) must be able to remove it.
  rds_deletion_protection = false
  rds_skip_final_snapshot = true
  force_destroy_buckets   = var.force_destroy_buckets

  platform_namespace       = var.platform_namespace
  trainer_service_accounts = var.trainer_service_accounts

  tags = local.tags
}
