//! Calls of the network policy and network event routes.

use reqwest::Method;
use warren_api_types::{NetworkEventList, NetworkPolicy, Sandbox};
use warren_core::SandboxId;

use super::{Client, ClientError};

impl Client {
    pub async fn set_network(
        &self,
        id: &SandboxId,
        policy: &NetworkPolicy,
    ) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "network"]);
        let req = self.request(Method::PUT, url).json(policy);
        self.json(req, "updating the network policy").await
    }

    pub async fn network_events(
        &self,
        id: &SandboxId,
        limit: u32,
    ) -> Result<NetworkEventList, ClientError> {
        let mut url = self.url(&["sandboxes", id.as_str(), "network", "events"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        self.json(self.request(Method::GET, url), "reading network events")
            .await
    }
}
