//! [`SecretSource`] over aws-sdk-secretsmanager.

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::SecretSource;
use crate::aws::{Aws, AwsError};

/// [`SecretSource`] over aws-sdk-secretsmanager.
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    /// The adapter for the environment's region (the ARN's region must be the same: the SDK
    /// signs for the client's region).
    pub fn new(aws: &Aws) -> Self {
        SecretsManager { client: aws_sdk_secretsmanager::Client::new(&aws.config) }
    }
}

impl SecretSource for SecretsManager {
    async fn secret_string(&self, arn: &str) -> Result<Option<String>, AwsError> {
        match self.client.get_secret_value().secret_id(arn).send().await {
            Ok(out) => match out.secret_string {
                Some(s) => Ok(Some(s)),
                None => Err(AwsError::Api {
                    call: "secretsmanager:GetSecretValue".into(),
                    resource: format!("secret {arn}"),
                    message:
                        "the secret holds binary data (SecretBinary); aws.secrets reads a JSON SecretString"
                            .into(),
                }),
            },
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::from_sdk("secretsmanager:GetSecretValue", &format!("secret {arn}"), e)),
        }
    }
}
