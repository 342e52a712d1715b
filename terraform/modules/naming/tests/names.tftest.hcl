# Name derivation and length limits. Offline: `terraform test` in modules/naming.

variables {
  environment = "dev"
}

run "default_names" {
  command = plan

  assert {
    condition     = output.cluster_name == "trainstack-dev"
    error_message = "cluster name should be <prefix>-<environment>, got ${output.cluster_name}"
  }

  assert {
    condition = output.bucket_names == {
      artifacts   = "trainstack-dev-mlflow-artifacts"
      datasets    = "trainstack-dev-training-datasets"
      checkpoints = "trainstack-dev-training-checkpoints"
    }
    error_message = "unexpected bucket names: ${jsonencode(output.bucket_names)}"
  }

  assert {
    condition     = output.rds_identifier == "trainstack-dev-mlflow"
    error_message = "unexpected RDS identifier: ${output.rds_identifier}"
  }

  assert {
    condition = output.iam_role_names == {
      mlflow         = "trainstack-dev-mlflow"
      ray            = "trainstack-dev-ray"
      tenant_trainer = "trainstack-dev-tenant-trainer"
      backend        = "trainstack-dev-backend"
      ebs_csi        = "trainstack-dev-ebs-csi"
      gpu_nodes      = "trainstack-dev-gpu-nodes"
    }
    error_message = "unexpected role names: ${jsonencode(output.iam_role_names)}"
  }

  assert {
    condition     = output.gpu_node_groups == {}
    error_message = "no pools declared, so no node groups expected"
  }
}

run "names_are_lowercased" {
  command = plan

  variables {
    prefix        = "TrainStack"
    environment   = "Prod"
    bucket_suffix = "ACME"
  }

  assert {
    condition     = output.cluster_name == "trainstack-prod"
    error_message = "expected lowercase cluster name, got ${output.cluster_name}"
  }

  assert {
    condition     = output.bucket_names.datasets == "trainstack-prod-training-datasets-acme"
    error_message = "expected lowercase bucket name, got ${output.bucket_names.datasets}"
  }
}

run "bucket_suffix_makes_names_unique" {
  command = plan

  variables {
    bucket_suffix = "123456789012"
  }

  assert {
    condition     = output.bucket_names.checkpoints == "trainstack-dev-training-checkpoints-123456789012"
    error_message = "suffix not appended: ${output.bucket_names.checkpoints}"
  }

  assert {
    condition     = alltrue([for n in values(output.bucket_names) : length(n) <= 63])
    error_message = "an account-ID suffix must still fit the 63-character limit"
  }
}

# 30-character prefix: cluster, RDS and role names still fit; the checkpoints bucket with an
# account-ID suffix is 68 characters, over S3's 63.
run "bucket_name_too_long" {
  command = plan

  variables {
    prefix        = "abcdefghijabcdefghijabcdefghij"
    bucket_suffix = "123456789012"
  }

  expect_failures = [output.bucket_names]
}

# Exactly 100 characters: the cluster name is at EKS's limit and accepted; the longer derived
# names are not.
run "cluster_name_at_limit" {
  command = plan

  variables {
    prefix      = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
    environment = "abcdefghijabcdefghijabcdefghijabcdefghi"
  }

  expect_failures = [
    output.bucket_names,
    output.rds_identifier,
    output.iam_role_names,
  ]
}

# 101-character cluster name: every derived name is over its limit.
run "cluster_name_too_long" {
  command = plan

  variables {
    prefix      = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
    environment = "abcdefghijabcdefghijabcdefghijabcdefghij"
  }

  expect_failures = [
    output.cluster_name,
    output.bucket_names,
    output.rds_identifier,
    output.iam_role_names,
  ]
}

run "prefix_with_double_hyphen_is_rejected" {
  command = plan

  variables {
    prefix = "train--stack"
  }

  expect_failures = [var.prefix]
}

run "environment_with_underscore_is_rejected" {
  command = plan

  variables {
    environment = "dev_1"
  }

  expect_failures = [var.environment]
}

run "bucket_suffix_with_trailing_hyphen_is_rejected" {
  command = plan

  variables {
    bucket_suffix = "123-"
  }

  expect_failures = [var.bucket_suffix]
}
