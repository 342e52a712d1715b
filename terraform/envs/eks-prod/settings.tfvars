# eks-prod: `terraform plan -var-file=envs/eks-prod/settings.tfvars` in terraform/ (trainstack
# passes it from the environment file's terraform.var_files).
environment = "prod"

# One NAT gateway per AZ, so losing an AZ does not cut the others off the internet.
single_nat_gateway = false

# The source plan's database: db.t3.small, Multi-AZ (standby with automatic failover),
# encrypted. Deleting it needs deletion protection turned off first, and leaves a snapshot.
rds_multi_az              = true
rds_backup_retention_days = 14
rds_deletion_protection   = true
rds_skip_final_snapshot   = false
