//! Calls of the `/v1/template-aliases` routes.

use reqwest::Method;
use warren_api_types::{SetTemplateAliasRequest, TemplateAlias, TemplateAliasList};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn template_aliases(&self) -> Result<TemplateAliasList, ClientError> {
        self.get_json(&["template-aliases"], "listing template aliases")
            .await
    }

    pub async fn set_template_alias(
        &self,
        alias: &str,
        target: &str,
    ) -> Result<TemplateAlias, ClientError> {
        let body = SetTemplateAliasRequest {
            target: target.to_owned(),
        };
        self.put_json(&["template-aliases", alias], &body, "setting the alias")
            .await
    }

    pub async fn remove_template_alias(&self, alias: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["template-aliases", alias]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "removing the alias").await.map(drop)
    }
}
