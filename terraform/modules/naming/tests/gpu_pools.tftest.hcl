# GPU pool validation and normalisation. Offline: `terraform test` in modules/naming.

variables {
  environment = "dev"
}

# The source plan's pool: p3.2xlarge spot, 0 to 5 nodes.
run "source_plan_pool" {
  command = plan

  variables {
    gpu_pools = {
      gpu = {
        instance_types = ["p3.2xlarge"]
        max_size       = 5
      }
    }
  }

  assert {
    # jsonencode: compares structure and values, not list-versus-tuple types.
    condition = jsonencode(output.gpu_node_groups.gpu) == jsonencode({
      name           = "gpu"
      instance_types = ["p3.2xlarge"]
      capacity_type  = "SPOT"
      ami_type       = "AL2023_x86_64_NVIDIA"
      min_size       = 0
      desired_size   = 0
      max_size       = 5
      labels         = { "nvidia.com/gpu.present" = "true" }
      taints         = { gpu = { key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" } }
    })
    error_message = "unexpected normalised pool: ${jsonencode(output.gpu_node_groups.gpu)}"
  }
}

run "pool_is_normalised" {
  command = plan

  variables {
    gpu_pools = {
      a100 = {
        instance_types = ["p4d.24xlarge", " p4d.24xlarge", "p4de.24xlarge"]
        capacity_type  = "on_demand"
        min_size       = 1
        max_size       = 4
        labels         = { team = "vision" }
      }
    }
  }

  assert {
    condition     = output.gpu_node_groups.a100.capacity_type == "ON_DEMAND"
    error_message = "capacity type should be upper-cased"
  }

  assert {
    condition     = output.gpu_node_groups.a100.instance_types == tolist(["p4d.24xlarge", "p4de.24xlarge"])
    error_message = "instance types should be trimmed and de-duplicated in order, got ${jsonencode(output.gpu_node_groups.a100.instance_types)}"
  }

  assert {
    condition     = output.gpu_node_groups.a100.desired_size == 1
    error_message = "desired size should default to min size"
  }

  assert {
    condition     = output.gpu_node_groups.a100.labels == { team = "vision", "nvidia.com/gpu.present" = "true" }
    error_message = "the GPU label should be merged into the pool's labels"
  }
}

run "min_greater_than_max_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], min_size = 3, max_size = 2 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "desired_greater_than_max_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], desired_size = 6, max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "max_zero_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], max_size = 0 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "max_over_100_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], max_size = 101 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "fractional_size_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], max_size = 2.5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "bad_capacity_type_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], capacity_type = "PREEMPTIBLE", max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "empty_instance_types_are_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = [], max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "blank_instance_type_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = [" "], max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "cpu_ami_type_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      gpu = { instance_types = ["p3.2xlarge"], ami_type = "AL2023_x86_64_STANDARD", max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "long_pool_name_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      abcdefghijabcdefghijabc = { instance_types = ["p3.2xlarge"], max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}

run "reserved_pool_name_is_rejected" {
  command = plan

  variables {
    gpu_pools = {
      cpu = { instance_types = ["p3.2xlarge"], max_size = 5 }
    }
  }

  expect_failures = [var.gpu_pools]
}
