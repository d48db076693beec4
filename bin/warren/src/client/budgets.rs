//! Calls of the `/v1/budgets` routes.

use reqwest::Method;
use warren_api_types::{
    Budget, BudgetList, CreateBudgetRequest, OverrideBudgetRequest, UpdateBudgetRequest,
};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn budgets(&self) -> Result<BudgetList, ClientError> {
        self.get_json(&["budgets"], "listing budgets").await
    }

    pub async fn create_budget(&self, body: &CreateBudgetRequest) -> Result<Budget, ClientError> {
        self.post_json(&["budgets"], body, "creating the budget")
            .await
    }

    pub async fn update_budget(
        &self,
        id: &str,
        body: &UpdateBudgetRequest,
    ) -> Result<Budget, ClientError> {
        self.put_json(&["budgets", id], body, "changing the budget")
            .await
    }

    pub async fn override_budget(&self, id: &str, lifted: bool) -> Result<Budget, ClientError> {
        let body = OverrideBudgetRequest { lifted };
        self.put_json(&["budgets", id, "override"], &body, "lifting the budget")
            .await
    }

    pub async fn delete_budget(&self, id: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["budgets", id]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the budget").await.map(drop)
    }
}
