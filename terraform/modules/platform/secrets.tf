# MLflow's basic-auth admin (and the Flask session key its replicas share), generated here and
# kept in Secrets Manager: trainstack's aws.secrets (or the External Secrets Operator) copies it
# into the cluster, so nobody creates the Kubernetes Secret by hand. The values are ephemeral
# and written write-only: they never enter the Terraform plan or state.

resource "aws_secretsmanager_secret" "mlflow_admin" {
  name_prefix             = "${var.cluster_name}-mlflow-admin-"
  description             = "MLflow basic-auth admin of ${var.cluster_name}: username, password, flask_secret_key"
  recovery_window_in_days = 7
  tags                    = var.tags
}

ephemeral "aws_secretsmanager_random_password" "mlflow_admin" {
  password_length     = 32
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "mlflow_flask_key" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "mlflow_admin" {
  secret_id = aws_secretsmanager_secret.mlflow_admin.id
  secret_string_wo = jsonencode({
    username         = "admin"
    password         = ephemeral.aws_secretsmanager_random_password.mlflow_admin.random_password
    flask_secret_key = ephemeral.aws_secretsmanager_random_password.mlflow_flask_key.random_password
  })
  # Raise to write newly generated values (a rotation); `apply` then shows the Secret changed.
  secret_string_wo_version = 1
}
