################################################################################
# What tells the environments apart: no defaults, so each envs/<env>/settings.tfvars states
# every one of them and a new environment cannot silently inherit another's.
################################################################################

variable "environment" {
  description = "Environment name in resource names and tags, e.g. `dev` (validated by modules/naming)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway shared by the three AZs (cheaper; an AZ outage cuts the private subnets off the internet) instead of one per AZ."
  type        = bool
}

variable "rds_multi_az" {
  description = "Run the PostgreSQL standby in a second AZ (the source plan's Multi-AZ). false halves the database cost of a disposable environment."
  type        = bool
}

variable "rds_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
}

variable "rds_deletion_protection" {
  description = "Refuse to delete the database; turn off before `trainstack down` (terraform destroy)."
  type        = bool
}

variable "rds_skip_final_snapshot" {
  description = "Delete the database without a final snapshot."
  type        = bool
}

################################################################################
# Shared by every environment (override in its settings.tfvars when needed)
################################################################################

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "prefix" {
  description = "Name prefix of every resource (see modules/naming)."
  type        = string
  default     = "trainstack"
}

variable "bucket_suffix" {
  description = "Suffix that makes the bucket names globally unique; empty means the AWS account ID."
  type        = string
  default     = ""
}

variable "cluster_version" {
  description = "Kubernetes version of the EKS control plane; keep it equal to target.kubernetes_version of the environment file."
  type        = string
  default     = "1.33"
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cluster_admin_arns" {
  description = "IAM principals granted cluster admin besides whoever runs `terraform apply`."
  type        = list(string)
  default     = []
}

variable "gpu_pools" {
  description = <<-EOT
    GPU pools owned by Terraform (validated by modules/naming). Leave empty when trainstack
    reconciles the pools from the environment file (the default); never declare a pool in both.
  EOT
  type        = any
  default     = {}
}

variable "platform_namespace" {
  description = "Namespace of the platform services (the environment file's `platform_namespace`)."
  type        = string
  default     = "trainstack-system"
}


variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (all data and versions are lost)."
  type        = bool
  default     = false
}

variable "enable_efs" {
  description = "Create an EFS file system and the EFS CSI driver for the Optuna HPO workspaces' ReadWriteMany volumes (components.hpo on eks)."
  type        = bool
  default     = false
}
