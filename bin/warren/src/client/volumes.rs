//! Calls of the `/v1/volumes` routes.

use reqwest::Method;
use warren_api_types::{CreateVolumeRequest, Volume, VolumeList};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn create_volume(&self, name: &str) -> Result<Volume, ClientError> {
        let body = CreateVolumeRequest {
            name: name.to_owned(),
        };
        self.post_json(&["volumes"], &body, "creating the volume")
            .await
    }

    pub async fn volumes(&self) -> Result<VolumeList, ClientError> {
        self.get_json(&["volumes"], "listing volumes").await
    }

    pub async fn delete_volume(&self, name: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["volumes", name]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the volume").await.map(drop)
    }
}
