# Tenant trainers' AWS identity: ONE role for every tenant, reached through EKS Pod Identity
# associations that trainstack creates per tenant (namespace <tenant>, ServiceAccount trainer;
# docs/eks.md, "Tenant identity"). EKS tags each session with the pod's namespace
# (kubernetes-namespace), and the policy names the S3 prefixes with that tag, so a tenant's
# pods reach only <tenant>/ in the datasets and checkpoints buckets. A new tenant therefore needs
# no Terraform change: only its association, which `trainstack apply` makes.

data "aws_iam_policy_document" "tenant_trainer_trust" {
  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "tenant_trainer" {
  name               = var.iam_role_names.tenant_trainer
  description        = "EKS Pod Identity role of the tenants' trainer ServiceAccounts of ${var.cluster_name}"
  assume_role_policy = data.aws_iam_policy_document.tenant_trainer_trust.json
  tags               = var.tags
}

# The policy is a template file rather than a policy document data source so that trainstack's
# tests render the very same file and evaluate it for two tenants
# (tests/tenant_policy.rs): `$${...}` is Terraform's escape for the IAM policy variable.
resource "aws_iam_role_policy" "tenant_data" {
  name = "tenant-data"
  role = aws_iam_role.tenant_trainer.id
  policy = templatefile("${path.module}/tenant-data-policy.json.tftpl", {
    datasets_bucket_arn    = local.bucket_arns.datasets
    checkpoints_bucket_arn = local.bucket_arns.checkpoints
  })
}
