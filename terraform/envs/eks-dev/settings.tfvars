# eks-dev: `terraform plan -var-file=envs/eks-dev/settings.tfvars` in terraform/ (trainstack
# passes it from the environment file's terraform.var_files).
environment = "dev"

# One NAT gateway shared by the three AZs. An AZ outage cuts the private subnets off the
# internet, acceptable for dev and about $65/month cheaper than one per AZ.
single_nat_gateway = true

# The source plan's database: db.t3.small, Multi-AZ, encrypted. false drops the standby of
# this disposable environment to halve the database cost.
rds_multi_az              = true
rds_backup_retention_days = 1
# dev is disposable: `trainstack down` (terraform destroy) must be able to remove it.
rds_deletion_protection = false
rds_skip_final_snapshot = true

# The Optuna HPO workspace of eks-dev (components.hpo) keeps its artifacts and shared cache on
# EFS: ReadWriteMany volumes for trial pods on any node. Pay per GB stored (Elastic
# throughput), nothing while empty.
enable_efs = true
