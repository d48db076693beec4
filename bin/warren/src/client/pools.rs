//! Calls of the `/v1/pools` routes.

use reqwest::Method;
use warren_api_types::{Pool, PoolList, SetPoolRequest};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn pools(&self) -> Result<PoolList, ClientError> {
        self.get_json(&["pools"], "listing pools").await
    }

    pub async fn set_pool(
        &self,
        template: &str,
        body: &SetPoolRequest,
    ) -> Result<Pool, ClientError> {
        self.put_json(&["pools", template], body, "setting the pool")
            .await
    }

    pub async fn delete_pool(&self, template: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["pools", template]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the pool").await.map(drop)
    }
}
