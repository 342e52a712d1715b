# Limits enforced here rather than on the variables: each depends on several inputs together.

output "cluster_name" {
  description = "EKS cluster name."
  value       = local.cluster_name

  precondition {
    condition     = length(local.cluster_name) <= 100
    error_message = "The cluster name \"${local.cluster_name}\" is ${length(local.cluster_name)} characters long; EKS allows at most 100. Shorten prefix or environment."
  }
}

output "bucket_names" {
  description = "S3 bucket names by purpose: artifacts (MLflow), datasets, checkpoints."
  value       = local.bucket_names

  precondition {
    condition     = alltrue([for n in values(local.bucket_names) : length(n) >= 3 && length(n) <= 63])
    error_message = "S3 bucket names must be 3 to 63 characters long; too long: ${join(", ", [for n in values(local.bucket_names) : "${n} (${length(n)})" if length(n) > 63])}. Shorten prefix, environment or bucket_suffix."
  }
}

output "rds_identifier" {
  description = "RDS instance identifier of the MLflow backend store."
  value       = local.rds_identifier

  precondition {
    condition     = length(local.rds_identifier) <= 63
    error_message = "The RDS identifier \"${local.rds_identifier}\" is ${length(local.rds_identifier)} characters long; RDS allows at most 63."
  }
}

output "iam_role_names" {
  description = "IAM role names: the IRSA roles by workload (mlflow, ray, trainer, backend, ebs_csi for the EBS CSI driver add-on) and gpu_nodes, the node role of the GPU node groups trainstack creates."
  value       = local.iam_role_names

  precondition {
    condition     = alltrue([for n in values(local.iam_role_names) : length(n) <= 64])
    error_message = "IAM role names must be at most 64 characters long; too long: ${join(", ", [for n in values(local.iam_role_names) : n if length(n) > 64])}."
  }
}

output "gpu_node_groups" {
  description = "Validated GPU pools in the shape of the EKS module's `eks_managed_node_groups`: capacity type upper-cased, desired size defaulted, GPU label and NoSchedule taint added."
  value       = local.gpu_node_groups
}
