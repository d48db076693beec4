//! Calls of the `/v1/rules` routes.

use warren_api_types::{RuleSet, SetRulesRequest};

use super::{Client, ClientError};

impl Client {
    pub async fn rules(&self) -> Result<RuleSet, ClientError> {
        self.get_json(&["rules"], "reading the rules").await
    }

    pub async fn set_rules(&self, body: &SetRulesRequest) -> Result<RuleSet, ClientError> {
        self.put_json(&["rules"], body, "setting the rules").await
    }
}
