module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "20.37.2"

  cluster_name    = var.cluster_name
  cluster_version = var.cluster_version

  cluster_endpoint_public_access       = var.cluster_endpoint_public_access
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  # IRSA: the OIDC provider the MLflow, Ray, trainer and backend roles trust.
  enable_irsa = true

  # Access entries (EKS API), not the aws-auth ConfigMap. Whoever runs `terraform apply` becomes
  # cluster admin, so trainstack can apply right after `infra apply`.
  authentication_mode                      = "API_AND_CONFIG_MAP"
  enable_cluster_creator_admin_permissions = true
  access_entries = {
    for arn in var.cluster_admin_arns : arn => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn   = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

  cluster_addons = {
    coredns    = { most_recent = true }
    kube-proxy = { most_recent = true }
    vpc-cni = {
      most_recent    = true
      before_compute = true
    }
    # Credentials of the tenants' trainer ServiceAccounts (EKS Pod Identity associations,
    # which trainstack creates per tenant).
    eks-pod-identity-agent = {
      most_recent    = true
      before_compute = true
    }
    # Volumes for the dataset and model PVCs.
    aws-ebs-csi-driver = {
      most_recent              = true
      service_account_role_arn = module.ebs_csi_irsa.iam_role_arn
    }
  }

  eks_managed_node_groups = merge(
    {
      cpu = {
        name           = "cpu"
        ami_type       = "AL2023_x86_64_STANDARD"
        instance_types = var.cpu_node_instance_types
        capacity_type  = "ON_DEMAND"
        min_size       = var.cpu_node_size.min
        desired_size   = var.cpu_node_size.desired
        max_size       = var.cpu_node_size.max
      }
    },
    var.gpu_node_groups,
  )

  node_security_group_tags = {
    "karpenter.sh/discovery" = var.cluster_name
  }

  tags = var.tags
}

# Node groups that trainstack creates through the EKS API have no launch template, so EKS gives
# them only the cluster primary security group, while the Terraform node groups above carry the
# module's node security group. Without these two rules, pods on GPU nodes could not reach
# CoreDNS or services on the CPU nodes, and the reverse.
resource "aws_vpc_security_group_ingress_rule" "nodes_from_cluster_primary" {
  security_group_id            = module.eks.node_security_group_id
  referenced_security_group_id = module.eks.cluster_primary_security_group_id
  ip_protocol                  = "-1"
  description                  = "All traffic from nodes in the cluster primary security group"
  tags                         = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "cluster_primary_from_nodes" {
  security_group_id            = module.eks.cluster_primary_security_group_id
  referenced_security_group_id = module.eks.node_security_group_id
  ip_protocol                  = "-1"
  description                  = "All traffic from nodes in the node security group"
  tags                         = var.tags
}
