//! Calls of `GET /v1/usage`.

use reqwest::Method;
use warren_api_types::UsageReport;

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    fn usage_url(&self, query: &[(&str, String)]) -> reqwest::Url {
        let mut url = self.url(&["usage"]);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    pub async fn usage(&self, query: &[(&str, String)]) -> Result<UsageReport, ClientError> {
        let req = self.request(Method::GET, self.usage_url(query));
        self.json(req, "reading usage").await
    }

    /// The same report as CSV, verbatim.
    pub async fn usage_csv(&self, query: &[(&str, String)]) -> Result<String, ClientError> {
        let mut query = query.to_vec();
        query.push(("format", "csv".to_owned()));
        let req = self
            .request(Method::GET, self.usage_url(&query))
            .timeout(CALL_TIMEOUT);
        let resp = self.send(req, "reading usage").await?;
        resp.text()
            .await
            .map_err(|e| self.transport(e, "reading usage"))
    }
}
