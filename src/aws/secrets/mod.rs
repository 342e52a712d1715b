//! Secrets Manager -> Kubernetes Secret data for `components.secrets.mode: apply`: each secret
//! of `aws.secrets` read once, its JSON fields put through the Secret's value templates.
//!
//! The values live only in memory, in the `data` this returns; errors name the ARN, the field
//! and the Secret, never a value (nor the secret text serde_json would quote).

mod sdk;

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine as _;
use serde_json::Value;

use crate::aws::AwsError;
use crate::env::model::ManagedSecret;
use crate::env::secret_template::ValueTemplate;
pub use sdk::SecretsManager;

/// Why a Secret could not be built; nothing has been written when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret does not exist (or was deleted).
    #[error("aws.secrets {secret:?}: Secrets Manager secret {arn} does not exist (aws.secrets[].from; check the ARN, its region and account, or the Terraform output it comes from)")]
    NotFound {
        /// The Kubernetes Secret it was for.
        secret: String,
        /// The secret's ARN.
        arn: String,
    },
    /// Reading it failed (access denied, throttled, no credentials).
    #[error("aws.secrets {secret:?}: {source}")]
    Read {
        /// The Kubernetes Secret it was for.
        secret: String,
        /// The failed call, which names the ARN.
        #[source]
        source: AwsError,
    },
    /// Its value is not a JSON object of strings.
    #[error("aws.secrets {secret:?}: Secrets Manager secret {arn} is not a JSON object ({why}); aws.secrets reads JSON fields such as {{\"username\": ..., \"password\": ...}}")]
    NotJson {
        /// The Kubernetes Secret it was for.
        secret: String,
        /// The secret's ARN.
        arn: String,
        /// What is wrong, without the text.
        why: String,
    },
    /// A template reads a field the secret lacks.
    #[error("aws.secrets {secret:?}: data.{key} reads field {field:?}, but Secrets Manager secret {arn} has no such string field (it has: {has})")]
    MissingField {
        /// The Kubernetes Secret it was for.
        secret: String,
        /// The Secret's key whose template reads the field.
        key: String,
        /// The field.
        field: String,
        /// The secret's ARN.
        arn: String,
        /// The fields it has (names only).
        has: String,
    },
}

/// The one Secrets Manager call: the current `SecretString` of a secret.
pub trait SecretSource: Sync {
    /// The secret's text, `Ok(None)` when it does not exist.
    fn secret_string(&self, arn: &str) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
}

/// Kubernetes Secret name -> its `data` (base64 values, as the API server stores them, so
/// that a re-apply compares equal and writes nothing).
pub type SecretData = BTreeMap<String, serde_json::Map<String, Value>>;

/// Reads every secret once (in declaration order, stopping at the first error) and builds the
/// data of each Secret.
pub async fn build(source: &impl SecretSource, secrets: &[ManagedSecret]) -> Result<SecretData, SecretError> {
    let mut read: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut out = SecretData::new();
    for s in secrets {
        if !read.contains_key(s.from.as_str()) {
            let fields = fetch(source, s).await?;
            read.insert(&s.from, fields);
        }
        out.insert(s.name.clone(), data_of(s, &read[s.from.as_str()])?);
    }
    Ok(out)
}

async fn fetch(
    source: &impl SecretSource,
    s: &ManagedSecret,
) -> Result<serde_json::Map<String, Value>, SecretError> {
    let text = source
        .secret_string(&s.from)
        .await
        .map_err(|e| SecretError::Read { secret: s.name.clone(), source: e })?
        .ok_or_else(|| SecretError::NotFound { secret: s.name.clone(), arn: s.from.clone() })?;
    let not_json = |why: String| SecretError::NotJson { secret: s.name.clone(), arn: s.from.clone(), why };
    // serde_json's messages name a line and column, never the text around them.
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(not_json(format!("the value is a JSON {}", json_kind(&other)))),
        Err(e) => Err(not_json(format!("invalid JSON at line {} column {}", e.line(), e.column()))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn data_of(
    s: &ManagedSecret,
    fields: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, SecretError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = serde_json::Map::new();
    for (key, text) in &s.data {
        // Validation parsed every template; a failure here is a template no environment passes.
        let Ok(template) = ValueTemplate::parse(text) else { continue };
        let value = template.render(|f| fields.get(f).and_then(Value::as_str)).map_err(|field| {
            SecretError::MissingField {
                secret: s.name.clone(),
                key: key.clone(),
                field,
                arn: s.from.clone(),
                has: fields.keys().cloned().collect::<Vec<_>>().join(", "),
            }
        })?;
        data.insert(key.clone(), Value::String(b64.encode(value)));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::{build, SecretError, SecretSource};
    use crate::aws::AwsError;
    use crate::env::model::ManagedSecret;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-Xy12Ab";

    /// Secrets by ARN, counting reads.
    struct Fake {
        secrets: BTreeMap<&'static str, &'static str>,
        reads: Mutex<usize>,
    }

    impl SecretSource for Fake {
        async fn secret_string(&self, arn: &str) -> Result<Option<String>, AwsError> {
            *self.reads.lock().unwrap() += 1;
            Ok(self.secrets.get(arn).map(|s| s.to_string()))
        }
    }

    fn fake(text: &'static str) -> Fake {
        Fake { secrets: BTreeMap::from([(ARN, text)]), reads: Mutex::new(0) }
    }

    fn secret(name: &str, data: &[(&str, &str)]) -> ManagedSecret {
        ManagedSecret {
            name: name.into(),
            from: ARN.into(),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn decoded(v: &serde_json::Value) -> String {
        use base64::Engine as _;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap())
            .unwrap()
    }

    #[tokio::test]
    async fn two_secrets_from_one_arn_read_it_once_and_fill_their_templates() {
        let f = fake(r#"{"username": "mlflow", "password": "p@ss:w/rd"}"#);
        let secrets = [
            secret(
                "mlflow-backend-store",
                &[("uri", "postgresql://{{ username }}:{{ password | urlencode }}@db:5432/mlflow")],
            ),
            secret("db", &[("password", "{{ password }}")]),
        ];
        let data = build(&f, &secrets).await.unwrap();
        assert_eq!(
            decoded(&data["mlflow-backend-store"]["uri"]),
            "postgresql://mlflow:p%40ss%3Aw%2Frd@db:5432/mlflow"
        );
        assert_eq!(decoded(&data["db"]["password"]), "p@ss:w/rd");
        assert_eq!(*f.reads.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_missing_field_names_the_key_the_field_and_the_arn_but_no_value() {
        let f = fake(r#"{"username": "mlflow", "pass": "hunter2"}"#);
        let e = build(&f, &[secret("s", &[("uri", "{{ password }}")])]).await.unwrap_err();
        assert!(matches!(e, SecretError::MissingField { .. }));
        let text = e.to_string();
        assert!(text.contains(ARN) && text.contains("data.uri") && text.contains("\"password\""), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn malformed_json_is_refused_without_quoting_it() {
        let f = fake(r#"{"password": "hunter2""#);
        let text = build(&f, &[secret("s", &[("p", "{{ password }}")])]).await.unwrap_err().to_string();
        assert!(text.contains("is not a JSON object (invalid JSON at line 1 column"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let f = fake(r#""hunter2""#);
        let text = build(&f, &[secret("s", &[("p", "{{ password }}")])]).await.unwrap_err().to_string();
        assert!(text.contains("(the value is a JSON string)") && !text.contains("hunter2"), "{text}");
    }
}
