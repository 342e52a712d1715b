//! Optuna trial batches in the cluster: what `hpo status` reads (Jobs and the workspace's
//! optuna-dashboard API) and how `hpo run` waits for a batch.

pub mod status;
pub mod wait;

/// Label on every object of a trial batch; its value is the batch name.
pub const BATCH_LABEL: &str = "trainstack.io/hpo-batch";

/// Label on a batch's objects naming the Optuna study.
pub const STUDY_LABEL: &str = "trainstack.io/hpo-study";

/// The workspace dashboard's Service and port name.
pub const DASHBOARD_SERVICE: (&str, &str) = ("hpo-dashboard", "http");

/// The dashboard's port number (the Service's `http` port).
pub const DASHBOARD_PORT: u16 = 8080;

/// The dashboard of namespace `ns` through the API server's service proxy.
pub fn dashboard_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/services/{}:{}/proxy/", DASHBOARD_SERVICE.0, DASHBOARD_SERVICE.1)
}
