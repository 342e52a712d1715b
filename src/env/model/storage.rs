//! `components.postgres` and `components.minio`: the in-cluster database and object storage
//! that stand in for RDS and S3 on kind.

use serde::{Deserialize, Serialize};

use super::Quantity;

/// In-cluster PostgreSQL StatefulSet for MLflow on kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Postgres {
    /// Render PostgreSQL.
    pub enabled: bool,
    /// Image.
    pub image: String,
    /// PVC size.
    pub storage: Quantity,
    /// Database name.
    pub database: String,
    /// Secret with `username` and `password`.
    pub credentials_secret: String,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres {
            enabled: false,
            image: "postgres:16.4".into(),
            storage: "5Gi".into(),
            database: "mlflow".into(),
            credentials_secret: "postgres-credentials".into(),
        }
    }
}

/// In-cluster MinIO for kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Minio {
    /// Render MinIO.
    pub enabled: bool,
    /// Image.
    pub image: String,
    /// PVC size.
    pub storage: Quantity,
    /// Secret with `rootUser` and `rootPassword`.
    pub credentials_secret: String,
    /// Buckets created at start-up.
    pub buckets: Vec<String>,
}

impl Default for Minio {
    fn default() -> Self {
        Minio {
            enabled: false,
            image: "minio/minio:RELEASE.2025-04-22T22-12-26Z".into(),
            storage: "10Gi".into(),
            credentials_secret: "minio-credentials".into(),
            buckets: vec![
                "mlflow-artifacts".into(),
                "training-datasets".into(),
                "training-checkpoints".into(),
            ],
        }
    }
}
