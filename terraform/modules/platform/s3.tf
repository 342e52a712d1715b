locals {
  # Every bucket: old versions are removed after a while, so versioning protects against
  # mistakes without keeping every overwritten artifact forever; unfinished multipart uploads
  # (invisible, but billed) are aborted; delete markers left with no versions are cleaned up.
  common_lifecycle_rules = [
    {
      id                                     = "expire-noncurrent-versions"
      enabled                                = true
      abort_incomplete_multipart_upload_days = var.abort_incomplete_multipart_days
      noncurrent_version_expiration          = { days = var.noncurrent_version_expiration_days }
      expiration                             = { expired_object_delete_marker = true }
    },
  ]

  buckets = {
    artifacts = {
      name            = var.bucket_names.artifacts
      lifecycle_rules = local.common_lifecycle_rules
    }
    datasets = {
      name            = var.bucket_names.datasets
      lifecycle_rules = local.common_lifecycle_rules
    }
    # Checkpoints are only needed to resume a run; old ones expire (a separate rule: S3 does not
    # allow days and expired_object_delete_marker in one expiration).
    checkpoints = {
      name = var.bucket_names.checkpoints
      lifecycle_rules = concat(local.common_lifecycle_rules, [
        {
          id         = "expire-old-checkpoints"
          enabled    = true
          expiration = { days = var.checkpoint_expiration_days }
        },
      ])
    }
  }
}

module "buckets" {
  source  = "terraform-aws-modules/s3-bucket/aws"
  version = "4.6.0"

  for_each = local.buckets

  bucket        = each.value.name
  force_destroy = var.force_destroy_buckets

  # No ACLs: the bucket owner owns every object.
  control_object_ownership = true
  object_ownership         = "BucketOwnerEnforced"

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true

  attach_deny_insecure_transport_policy = true

  versioning = {
    enabled = true
  }

  server_side_encryption_configuration = {
    rule = {
      apply_server_side_encryption_by_default = {
        sse_algorithm = "AES256"
      }
    }
  }

  lifecycle_rule = each.value.lifecycle_rules

  tags = merge(var.tags, { Purpose = each.key })
}
