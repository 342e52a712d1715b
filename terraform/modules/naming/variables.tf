variable "prefix" {
  description = "Name prefix shared by every resource of the platform (lowercased), e.g. `trainstack`."
  type        = string
  default     = "trainstack"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$", lower(var.prefix)))
    error_message = "prefix must start with a letter and hold only letters, digits and single hyphens (no leading, trailing or double hyphen)."
  }
}

variable "environment" {
  description = "Environment name (lowercased), e.g. `dev` or `prod`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$", lower(var.environment)))
    error_message = "environment must start with a letter and hold only letters, digits and single hyphens (no leading, trailing or double hyphen)."
  }
}

variable "bucket_suffix" {
  description = "Appended to bucket names to make them globally unique (S3 names are global), e.g. the AWS account ID. Empty for none."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z0-9]+(-[a-z0-9]+)*)?$", lower(var.bucket_suffix)))
    error_message = "bucket_suffix may hold only letters, digits and single hyphens, and must not start or end with a hyphen."
  }
}

variable "gpu_pools" {
  description = <<-EOT
    GPU node pools, keyed by pool name. Validated and normalised into the shape of the EKS module's
    `eks_managed_node_groups` (output `gpu_node_groups`). `desired_size` defaults to `min_size`.
  EOT
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "SPOT")
    min_size       = optional(number, 0)
    desired_size   = optional(number)
    max_size       = number
    ami_type       = optional(string, "AL2023_x86_64_NVIDIA")
    labels         = optional(map(string), {})
  }))
  default = {}

  # The EKS module names the node IAM role with the prefix `<pool>-eks-node-group-`, and IAM
  # limits a name prefix to 38 characters: 22 is the longest pool name that fits.
  validation {
    condition     = alltrue([for name, _ in var.gpu_pools : can(regex("^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$", name)) && length(name) <= 22])
    error_message = "GPU pool names must be lowercase letters, digits and single hyphens, start with a letter, and be at most 22 characters long."
  }

  validation {
    condition     = !contains(keys(var.gpu_pools), "cpu")
    error_message = "The GPU pool name \"cpu\" is reserved for the platform's CPU node group."
  }

  validation {
    condition     = alltrue([for p in var.gpu_pools : length(p.instance_types) > 0 && alltrue([for t in p.instance_types : trimspace(t) != ""])])
    error_message = "Every GPU pool needs at least one instance type, and instance types must not be empty strings."
  }

  validation {
    condition     = alltrue([for p in var.gpu_pools : contains(["SPOT", "ON_DEMAND"], upper(p.capacity_type))])
    error_message = "capacity_type must be SPOT or ON_DEMAND."
  }

  validation {
    condition = alltrue([for p in var.gpu_pools : alltrue([
      for n in [p.min_size, coalesce(p.desired_size, p.min_size), p.max_size] : n >= 0 && floor(n) == n
    ])])
    error_message = "min_size, desired_size and max_size must be whole numbers, 0 or more."
  }

  validation {
    condition     = alltrue([for p in var.gpu_pools : p.max_size >= 1 && p.max_size <= 100])
    error_message = "max_size must be between 1 and 100 (a pool that can never hold a node is a mistake; 100 is the guard against runaway GPU spend)."
  }

  validation {
    condition     = alltrue([for p in var.gpu_pools : p.min_size <= coalesce(p.desired_size, p.min_size) && coalesce(p.desired_size, p.min_size) <= p.max_size])
    error_message = "Sizes must satisfy min_size <= desired_size <= max_size."
  }

  validation {
    condition     = alltrue([for p in var.gpu_pools : contains(["AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA", "AL2_x86_64_GPU", "BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA", "CUSTOM"], p.ami_type)])
    error_message = "ami_type must be a GPU AMI type: AL2023_x86_64_NVIDIA, AL2023_ARM_64_NVIDIA, AL2_x86_64_GPU, BOTTLEROCKET_x86_64_NVIDIA, BOTTLEROCKET_ARM_64_NVIDIA or CUSTOM."
  }
}
