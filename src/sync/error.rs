use crate::{chatof::ApiError, store::DbError};

/// Why a bot's run failed. Displays kinds, statuses and ids only.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("ChatofAI request failed: {0}")]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Database(#[from] DbError),
    #[error("interrupted by shutdown")]
    Interrupted,
}

impl SyncError {
    /// A short stable label: `api:http_401`, `api:timeout`, `database`.
    pub fn kind(&self) -> String {
        match self {
            Self::Api(err) => format!("api:{}", err.kind()),
            Self::Database(_) => "database".into(),
            Self::Interrupted => "interrupted".into(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(err) => err.status().map(|status| status.as_u16()),
            Self::Database(_) | Self::Interrupted => None,
        }
    }

    /// What to check, for an API error a setting causes (a refused key, a wrong URL).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Api(err) => err.hint(),
            Self::Database(_) | Self::Interrupted => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(err) => err.request_id(),
            Self::Database(_) | Self::Interrupted => None,
        }
    }
}
