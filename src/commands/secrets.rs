//! The data of the Secrets `diff`, `apply`, `status` and `smoke` make from Secrets Manager
//! (`components.secrets.mode: apply`), added to the rendered set in memory only.

use crate::aws::secrets::{self, SecretsManager};
use crate::aws::Aws;
use crate::manifest::{Manifest, Origin};
use crate::Error;

use super::Prepared;

/// The rendered set with each Secret of `aws.secrets` given its data, read from Secrets
/// Manager now: a missing or unreadable secret stops the command before anything is written.
/// Rendering leaves the data out so that no value reaches a file; this is the one place it
/// joins the set, and the engine redacts it in every diff.
pub async fn with_secret_data(prepared: &Prepared) -> Result<Vec<Manifest>, Error> {
    let env = &prepared.loaded.env;
    let mut set = prepared.set.clone();
    let declared = env.applied_secrets();
    if declared.is_empty() {
        return Ok(set);
    }
    let aws = Aws::load(env.target.region.as_deref().unwrap_or_default()).await;
    let mut data = secrets::build(&SecretsManager::new(&aws), declared).await?;
    for m in &mut set {
        let ours = matches!(&m.origin, Origin::Template { component, .. } if component == "secrets");
        if !ours || m.kind() != "Secret" || m.namespace() != Some(env.platform_namespace.as_str()) {
            continue;
        }
        if let Some(d) = data.remove(m.name()) {
            m.obj["data"] = serde_json::Value::Object(d);
        }
    }
    Ok(set)
}
