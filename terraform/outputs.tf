# trainstack environment files reference these as ${terraform.NAME}: keep the names stable.

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "region" {
  description = "AWS region of the cluster and buckets."
  value       = var.region
}

output "cluster_endpoint" {
  description = "Kubernetes API server endpoint."
  value       = module.platform.cluster_endpoint
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  value       = module.platform.oidc_provider_arn
}

output "mlflow_role_arn" {
  description = "IRSA role of the MLflow ServiceAccount (artifact bucket read/write)."
  value       = module.platform.role_arns.mlflow
}

output "ray_role_arn" {
  description = "IRSA role of the Ray ServiceAccount (datasets read, checkpoints read/write)."
  value       = module.platform.role_arns.ray
}

output "tenant_role_arn" {
  description = "EKS Pod Identity role of every tenant's trainer ServiceAccount: datasets read and checkpoints read/write under the tenant's own prefix (<tenant>/), by the kubernetes-namespace session tag. trainstack associates it with each tenant (aws.pod_identity.role_arn)."
  value       = module.platform.tenant_role_arn
}

output "backend_role_arn" {
  description = "IRSA role of the platform backend ServiceAccount (datasets read, checkpoints read/write)."
  value       = module.platform.role_arns.backend
}

output "artifacts_bucket" {
  description = "S3 bucket of MLflow artifacts."
  value       = module.platform.bucket_names.artifacts
}

output "datasets_bucket" {
  description = "S3 bucket of training datasets."
  value       = module.platform.bucket_names.datasets
}

output "checkpoints_bucket" {
  description = "S3 bucket of training checkpoints."
  value       = module.platform.bucket_names.checkpoints
}

output "rds_endpoint" {
  description = "PostgreSQL endpoint of the MLflow backend store, as host:port."
  value       = module.platform.rds_endpoint
}

output "rds_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) with the PostgreSQL master user name and password."
  value       = module.platform.rds_secret_arn
}

output "mlflow_admin_secret_arn" {
  description = "Secrets Manager secret with the MLflow basic-auth admin (username, password, flask_secret_key)."
  value       = module.platform.mlflow_admin_secret_arn
}

output "node_security_group_id" {
  description = "Security group of the Terraform-managed EKS nodes."
  value       = module.platform.node_security_group_id
}

output "private_subnet_ids" {
  description = "Private subnet IDs, one per AZ."
  value       = tolist(module.platform.private_subnet_ids)
}

output "account_id" {
  description = "AWS account ID (suffix of bucket names trainstack creates)."
  value       = data.aws_caller_identity.current.account_id
}

output "node_role_arn" {
  description = "IAM role of the GPU managed node groups trainstack creates through the EKS API."
  value       = module.platform.node_role_arn
}

output "efs_file_system_id" {
  description = "EFS file system of the HPO workspaces' ReadWriteMany volumes (empty unless enable_efs)."
  value       = module.platform.efs_file_system_id
}
