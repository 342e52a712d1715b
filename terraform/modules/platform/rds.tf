resource "aws_security_group" "rds" {
  name_prefix = "${var.rds_identifier}-"
  description = "PostgreSQL for MLflow: reachable from the EKS node security group only"
  vpc_id      = module.vpc.vpc_id
  tags        = merge(var.tags, { Name = var.rds_identifier })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_nodes" {
  security_group_id            = aws_security_group.rds.id
  referenced_security_group_id = module.eks.node_security_group_id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
  description                  = "PostgreSQL from EKS nodes"
  tags                         = var.tags
}

module "rds" {
  source  = "terraform-aws-modules/rds/aws"
  version = "6.10.0"

  identifier = var.rds_identifier

  engine               = "postgres"
  engine_version       = var.rds_engine_version
  family               = "postgres${var.rds_engine_version}"
  major_engine_version = var.rds_engine_version
  instance_class       = var.rds_instance_class

  allocated_storage     = var.rds_allocated_storage
  max_allocated_storage = var.rds_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name  = var.rds_database_name
  username = var.rds_username
  port     = 5432

  # RDS generates the master password and keeps it in Secrets Manager (output
  # db_instance_master_user_secret_arn): it never appears in Terraform state or variables.
  manage_master_user_password = true

  multi_az               = var.rds_multi_az
  create_db_subnet_group = true
  subnet_ids             = module.vpc.private_subnets
  vpc_security_group_ids = [aws_security_group.rds.id]
  publicly_accessible    = false

  # PostgreSQL has no options to set; the parameter group (family above) is kept.
  create_db_option_group = false

  backup_retention_period = var.rds_backup_retention_days
  backup_window           = "03:00-04:00"
  maintenance_window      = "sun:04:30-sun:05:30"
  deletion_protection     = var.rds_deletion_protection
  skip_final_snapshot     = var.rds_skip_final_snapshot
  copy_tags_to_snapshot   = true

  tags = var.tags
}
