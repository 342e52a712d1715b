locals {
  prefix      = lower(var.prefix)
  environment = lower(var.environment)
  base        = "${local.prefix}-${local.environment}"
  suffix      = var.bucket_suffix == "" ? "" : "-${lower(var.bucket_suffix)}"

  cluster_name   = local.base
  rds_identifier = "${local.base}-mlflow"

  # The purposes match the bucket names the source plan uses (mlflow-artifacts,
  # training-datasets, training-checkpoints).
  bucket_names = {
    artifacts   = "${local.base}-mlflow-artifacts${local.suffix}"
    datasets    = "${local.base}-training-datasets${local.suffix}"
    checkpoints = "${local.base}-training-checkpoints${local.suffix}"
  }

  iam_role_names = {
    mlflow = "${local.base}-mlflow"
    ray    = "${local.base}-ray"
    # The one role of every tenant's trainer ServiceAccount (EKS Pod Identity). Not the name
    # of the IRSA trainer role it replaces, so Terraform can create it before deleting that.
    tenant_trainer = "${local.base}-tenant-trainer"
    backend        = "${local.base}-backend"
    ebs_csi        = "${local.base}-ebs-csi"
    gpu_nodes      = "${local.base}-gpu-nodes"
  }

  # Same label and taint as the node groups trainstack reconciles itself (platform spec, GPU
  # node pools), so workloads select and tolerate either kind of pool the same way.
  gpu_label = { "nvidia.com/gpu.present" = "true" }
  gpu_taint = { key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }

  gpu_node_groups = {
    for name, p in var.gpu_pools : name => {
      name           = name
      instance_types = distinct([for t in p.instance_types : trimspace(t)])
      capacity_type  = upper(p.capacity_type)
      ami_type       = p.ami_type
      min_size       = p.min_size
      desired_size   = coalesce(p.desired_size, p.min_size)
      max_size       = p.max_size
      labels         = merge(p.labels, local.gpu_label)
      taints         = { gpu = local.gpu_taint }
    }
  }
}
