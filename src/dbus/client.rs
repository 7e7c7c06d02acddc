//! The CLI side of the D-Bus API.

use crate::engine::Scope;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the D-Bus API is not available yet")]
    Unavailable,
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        3
    }
}

pub async fn status(_bus: Option<String>, _json: bool) -> Result<String, ClientError> {
    Err(ClientError::Unavailable)
}
pub async fn standby(_bus: Option<String>, _scope: Scope) -> Result<String, ClientError> {
    Err(ClientError::Unavailable)
}
pub async fn takeover(_bus: Option<String>, _scope: Scope) -> Result<String, ClientError> {
    Err(ClientError::Unavailable)
}
pub async fn reload(_bus: Option<String>) -> Result<String, ClientError> {
    Err(ClientError::Unavailable)
}
