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

variable "trainer_service_accounts" {
  description = "`namespace:serviceaccount` of training jobs allowed to assume the trainer role (tenant namespaces)."
  type        = list(string)
  default     = ["trainstack-system:trainer"]
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (all data and versions are lost)."
  type        = bool
  default     = false
}
