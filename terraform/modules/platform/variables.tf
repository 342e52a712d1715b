################################################################################
# Names (from modules/naming)
################################################################################

variable "cluster_name" {
  description = "EKS cluster name; also the prefix of the VPC, security group and IAM policy names."
  type        = string
}

variable "bucket_names" {
  description = "S3 bucket names by purpose."
  type = object({
    artifacts   = string
    datasets    = string
    checkpoints = string
  })
}

variable "rds_identifier" {
  description = "RDS instance identifier of the MLflow backend store."
  type        = string
}

variable "iam_role_names" {
  description = "IAM role names: the IRSA roles by workload, tenant_trainer (EKS Pod Identity role of every tenant's trainer ServiceAccount) and gpu_nodes (node role of the GPU node groups trainstack creates)."
  type = object({
    mlflow         = string
    ray            = string
    tenant_trainer = string
    backend        = string
    ebs_csi        = string
    gpu_nodes      = string
  })
}

variable "tags" {
  description = "Tags added to every resource that takes them."
  type        = map(string)
  default     = {}
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "VPC CIDR block; split into three private /20 and three public /24 subnets."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a CIDR block of /16 or larger (the subnet layout needs the room)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, dev) instead of one per AZ (survives an AZ outage, prod)."
  type        = bool
  default     = true
}

################################################################################
# EKS
################################################################################

variable "cluster_version" {
  description = "Kubernetes `<major>.<minor>` version of the EKS control plane (keep it equal to the environment file's target.kubernetes_version)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.cluster_version))
    error_message = "cluster_version must look like 1.33."
  }
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API publicly (trainstack and kubectl run from outside the VPC)."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cluster_admin_arns" {
  description = "IAM principals (besides the cluster creator) granted cluster admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "cpu_node_instance_types" {
  description = "Instance types of the CPU managed node group (platform services: MLflow, operators, Ray head)."
  type        = list(string)
  default     = ["t3.medium"]
}

variable "cpu_node_size" {
  description = "Scaling of the CPU managed node group."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 2, desired = 2, max = 3 }

  validation {
    condition     = var.cpu_node_size.min <= var.cpu_node_size.desired && var.cpu_node_size.desired <= var.cpu_node_size.max && var.cpu_node_size.max >= 1
    error_message = "cpu_node_size must satisfy min <= desired <= max and max >= 1."
  }
}

variable "gpu_node_groups" {
  description = <<-EOT
    GPU node groups owned by Terraform, in the shape of `eks_managed_node_groups` (the
    `gpu_node_groups` output of modules/naming). Empty by default: trainstack reconciles GPU
    pools itself through the EKS API. A pool must be owned by one or the other, never both.
  EOT
  type        = any
  default     = {}
}

################################################################################
# RDS PostgreSQL (MLflow backend store)
################################################################################

variable "rds_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.small"
}

variable "rds_multi_az" {
  description = "Run a standby in a second AZ with automatic failover (doubles the instance cost)."
  type        = bool
  default     = true
}

variable "rds_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "rds_allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20
}

variable "rds_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "rds_database_name" {
  description = "Database created for MLflow."
  type        = string
  default     = "mlflow"
}

variable "rds_username" {
  description = "Master user name; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "mlflow"
}

variable "rds_backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 7
}

variable "rds_deletion_protection" {
  description = "Refuse to delete the instance (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "rds_skip_final_snapshot" {
  description = "Delete without a final snapshot."
  type        = bool
  default     = false
}

################################################################################
# S3
################################################################################

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed, in every bucket."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which unfinished multipart uploads are aborted (large checkpoints and artifacts upload in parts)."
  type        = number
  default     = 7
}

variable "checkpoint_expiration_days" {
  description = "Days after which checkpoints expire (become noncurrent versions, removed after noncurrent_version_expiration_days)."
  type        = number
  default     = 90
}

variable "force_destroy_buckets" {
  description = "Allow `terraform destroy` to delete non-empty buckets (all objects and versions are lost)."
  type        = bool
  default     = false
}

################################################################################
# IRSA: the ServiceAccounts allowed to assume each role
################################################################################

variable "platform_namespace" {
  description = "Namespace of the shared platform services (trainstack's `platform_namespace`)."
  type        = string
  default     = "trainstack-system"
}

variable "mlflow_service_account" {
  description = "ServiceAccount of the MLflow server in the platform namespace."
  type        = string
  default     = "mlflow"
}

variable "ray_service_account" {
  description = "ServiceAccount of the Ray cluster pods in the platform namespace."
  type        = string
  default     = "ray"
}

variable "backend_service_account" {
  description = "ServiceAccount of the platform backend in the platform namespace."
  type        = string
  default     = "trainjob-backend"
}

variable "enable_efs" {
  description = "Create the EFS file system, its mount targets and the EFS CSI driver add-on for the HPO workspaces' ReadWriteMany volumes."
  type        = bool
  default     = false
}
