# Shared file storage for the Optuna HPO workspaces (enable_efs): trial pods run on any node
# and all mount their workspace's artifact store and cache, which needs ReadWriteMany volumes.
# EBS volumes attach to one node, so the workspaces use EFS through the EFS CSI driver;
# trainstack renders the StorageClass from the file system ID (output efs_file_system_id).

resource "aws_efs_file_system" "hpo" {
  count = var.enable_efs ? 1 : 0

  creation_token   = "${var.cluster_name}-hpo"
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  # Artifacts of old trials are read rarely: move them to Infrequent Access after 30 days.
  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = merge(var.tags, { Name = "${var.cluster_name}-hpo" })
}

# NFS from the nodes only: the module's node security group and the cluster primary group
# (node groups trainstack creates through the EKS API carry only the latter).
resource "aws_security_group" "efs" {
  count = var.enable_efs ? 1 : 0

  name_prefix = "${var.cluster_name}-efs-"
  description = "NFS to the HPO file system from the cluster's nodes"
  vpc_id      = module.vpc.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_nodes" {
  for_each = var.enable_efs ? {
    nodes           = module.eks.node_security_group_id
    cluster_primary = module.eks.cluster_primary_security_group_id
  } : {}

  security_group_id            = aws_security_group.efs[0].id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  description                  = "NFS from the ${each.key} security group"
  tags                         = var.tags
}

# One mount target per private subnet (one per AZ), so pods in every AZ reach it locally.
resource "aws_efs_mount_target" "hpo" {
  count = var.enable_efs ? length(local.azs) : 0

  file_system_id  = aws_efs_file_system.hpo[0].id
  subnet_id       = module.vpc.private_subnets[count.index]
  security_groups = [aws_security_group.efs[0].id]
}

# The EFS CSI driver's controller creates an access point per volume.
module "efs_csi_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.60.0"

  create_role           = var.enable_efs
  role_name             = "${var.cluster_name}-efs-csi"
  attach_efs_csi_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:efs-csi-controller-sa"]
    }
  }

  tags = var.tags
}

resource "aws_eks_addon" "efs_csi" {
  count = var.enable_efs ? 1 : 0

  cluster_name             = module.eks.cluster_name
  addon_name               = "aws-efs-csi-driver"
  service_account_role_arn = module.efs_csi_irsa.iam_role_arn
  tags                     = var.tags

  # Volumes mount only once the mount targets exist.
  depends_on = [aws_efs_mount_target.hpo]
}
