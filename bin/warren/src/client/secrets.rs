//! Calls of the `/v1/secrets` routes.

use reqwest::Method;
use warren_api_types::{Secret, SecretList, SetSecretRequest};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    /// Creates or replaces a secret; `true` when it did not exist before.
    pub async fn set_secret(
        &self,
        name: &str,
        value: String,
    ) -> Result<(Secret, bool), ClientError> {
        let body = SetSecretRequest {
            name: name.to_owned(),
            value,
        };
        let req = self
            .request(Method::POST, self.url(&["secrets"]))
            .json(&body)
            .timeout(CALL_TIMEOUT);
        drop(body);
        let what = "setting the secret";
        let resp = self.send(req, what).await?;
        let created = resp.status() == reqwest::StatusCode::CREATED;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e, what))?;
        let secret = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
        Ok((secret, created))
    }

    pub async fn secrets(&self) -> Result<SecretList, ClientError> {
        self.get_json(&["secrets"], "listing secrets").await
    }

    pub async fn delete_secret(&self, name: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["secrets", name]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the secret").await.map(drop)
    }
}
