# IRSA roles: each trusts exactly the ServiceAccounts named by the variables, through the
# cluster's OIDC provider, and gets only the S3 access its workload needs.

locals {
  bucket_arns = { for k, b in module.buckets : k => b.s3_bucket_arn }

  object_rw_actions = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
  ]
}

# MLflow: read and write run artifacts.
data "aws_iam_policy_document" "artifacts_rw" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arns.artifacts]
  }

  statement {
    sid       = "ReadWriteArtifacts"
    actions   = local.object_rw_actions
    resources = ["${local.bucket_arns.artifacts}/*"]
  }
}

# Ray and the backend: read datasets, read and write checkpoints (all tenants': they serve
# every tenant). Tenant trainers get tenant_identity.tf's role instead.
data "aws_iam_policy_document" "training_data" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.bucket_arns.datasets, local.bucket_arns.checkpoints]
  }

  statement {
    sid       = "ReadDatasets"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns.datasets}/*"]
  }

  statement {
    sid       = "ListCheckpointUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arns.checkpoints]
  }

  statement {
    sid       = "ReadWriteCheckpoints"
    actions   = local.object_rw_actions
    resources = ["${local.bucket_arns.checkpoints}/*"]
  }
}

resource "aws_iam_policy" "artifacts_rw" {
  name        = "${var.cluster_name}-mlflow-artifacts-rw"
  description = "Read and write the MLflow artifact bucket"
  policy      = data.aws_iam_policy_document.artifacts_rw.json
  tags        = var.tags
}

resource "aws_iam_policy" "training_data" {
  name        = "${var.cluster_name}-training-data"
  description = "Read training datasets, read and write training checkpoints"
  policy      = data.aws_iam_policy_document.training_data.json
  tags        = var.tags
}

locals {
  irsa_roles = {
    mlflow = {
      name             = var.iam_role_names.mlflow
      policy_arn       = aws_iam_policy.artifacts_rw.arn
      service_accounts = ["${var.platform_namespace}:${var.mlflow_service_account}"]
    }
    ray = {
      name             = var.iam_role_names.ray
      policy_arn       = aws_iam_policy.training_data.arn
      service_accounts = ["${var.platform_namespace}:${var.ray_service_account}"]
    }
    backend = {
      name             = var.iam_role_names.backend
      policy_arn       = aws_iam_policy.training_data.arn
      service_accounts = ["${var.platform_namespace}:${var.backend_service_account}"]
    }
  }
}

module "irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.60.0"

  for_each = local.irsa_roles

  role_name        = each.value.name
  role_description = "IRSA role of trainstack ${each.key} (${join(", ", each.value.service_accounts)})"
  role_policy_arns = { s3 = each.value.policy_arn }

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = each.value.service_accounts
    }
  }

  tags = var.tags
}

# The EBS CSI driver add-on's controller.
module "ebs_csi_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.60.0"

  role_name             = var.iam_role_names.ebs_csi
  attach_ebs_csi_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"]
    }
  }

  tags = var.tags
}

# Node role of the GPU managed node groups trainstack creates through the EKS API (output
# node_role_arn): the three policies every EKS node needs. With access entries on, EKS gives a
# managed node group's role its cluster access itself. Node groups in `gpu_node_groups` get a
# role of their own from the EKS module instead.
data "aws_partition" "current" {}

locals {
  node_policy_arns = [
    for p in ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"] :
    "arn:${data.aws_partition.current.partition}:iam::aws:policy/${p}"
  ]
}

module "gpu_node_role" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-assumable-role"
  version = "5.60.0"

  create_role       = true
  role_name         = var.iam_role_names.gpu_nodes
  role_description  = "Nodes of the GPU managed node groups of ${var.cluster_name}"
  role_requires_mfa = false

  trusted_role_services = ["ec2.amazonaws.com"]
  trusted_role_actions  = ["sts:AssumeRole"]

  custom_role_policy_arns           = local.node_policy_arns
  number_of_custom_role_policy_arns = length(local.node_policy_arns)

  tags = var.tags
}
