output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API server endpoint."
  value       = module.eks.cluster_endpoint
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group of the Terraform-managed nodes (the only source allowed into RDS)."
  value       = module.eks.node_security_group_id
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ (nodes, RDS)."
  value       = module.vpc.private_subnets
}

output "role_arns" {
  description = "IRSA role ARNs by workload: mlflow, ray, backend."
  value       = { for k, r in module.irsa : k => r.iam_role_arn }
}

output "bucket_names" {
  description = "S3 bucket names by purpose: artifacts, datasets, checkpoints."
  value       = { for k, b in module.buckets : k => b.s3_bucket_id }
}

output "rds_endpoint" {
  description = "PostgreSQL endpoint as `host:port`."
  value       = module.rds.db_instance_endpoint
}

output "rds_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) holding the master user name and password."
  value       = module.rds.db_instance_master_user_secret_arn
}

output "mlflow_admin_secret_arn" {
  description = "Secrets Manager secret holding the MLflow basic-auth admin (username, password, flask_secret_key)."
  value       = aws_secretsmanager_secret.mlflow_admin.arn
}

output "node_role_arn" {
  description = "IAM role of the GPU managed node groups trainstack creates through the EKS API."
  value       = module.gpu_node_role.iam_role_arn
}

output "efs_file_system_id" {
  description = "EFS file system of the HPO workspaces (empty without enable_efs)."
  value       = var.enable_efs ? aws_efs_file_system.hpo[0].id : ""
}

output "tenant_role_arn" {
  description = "EKS Pod Identity role of every tenant's trainer ServiceAccount (its own S3 prefixes only)."
  value       = aws_iam_role.tenant_trainer.arn
}
