//! One AWS API operation as the source counts it: its outcome recorded (throttled, error, success)
//! and its error in one type.

use std::fmt::Debug;
use std::future::Future;

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::sources::engine::telemetry::{ApiCalls, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{api} failed: {message}")]
    Api { api: &'static str, message: String },
    #[error("{api} returned an unexpected response: {detail}")]
    Unexpected { api: &'static str, detail: String },
}

impl AwsError {
    pub fn unexpected(api: &'static str, detail: impl Into<String>) -> Self {
        AwsError::Unexpected {
            api,
            detail: detail.into(),
        }
    }
}

/// Runs one API operation and records its outcome.
pub async fn call<T, E, R>(
    calls: &ApiCalls,
    api: &'static str,
    operation: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match operation.await {
        Ok(output) => {
            calls.record(api, Outcome::Success);
            Ok(output)
        }
        Err(err) => {
            calls.record(api, Outcome::from_error_code(err.code()));
            Err(AwsError::Api {
                api,
                message: DisplayErrorContext(&err).to_string(),
            })
        }
    }
}

/// Collects every page of a paginated operation, recording each page as one call.
pub async fn pages<T, E, R>(
    calls: &ApiCalls,
    api: &'static str,
    mut stream: PaginationStream<Result<T, SdkError<E, R>>>,
) -> Result<Vec<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        out.push(call(calls, api, async { page }).await?);
    }
    Ok(out)
}
