//! The handlers' shared preamble as extractors, each failing with an OperationOutcome:
//! how to render the answer ([`Rendering`], from `_format`, `_pretty`, `_summary`,
//! `_elements` and `Accept`), and the resource the URL names ([`Instance`] for
//! `{type}/{id}`, [`TypeOf`] for `{type}`). An unknown type is 404, a malformed id 400.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_records::query;

use crate::error::ApiError;
use crate::format::Rendering;

impl<S: Send + Sync> FromRequestParts<S> for Rendering {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = parts
            .uri
            .query()
            .map(query::decode_pairs)
            .unwrap_or_default();
        Rendering::from_request(&pairs, &parts.headers)
    }
}

/// A resource type the server knows.
pub(crate) fn rtype(name: &str) -> Result<ResourceType, ApiError> {
    ResourceType::parse(name).ok_or_else(|| ApiError::unknown_type(name))
}

/// A valid FHIR id.
pub(crate) fn rid(id: &str) -> Result<ResourceId, ApiError> {
    ResourceId::parse(id)
        .ok_or_else(|| ApiError::bad_request("the id in the URL is not a valid FHIR id"))
}

/// The URL's path segments the route names, or a 400 saying the URL is not one.
async fn segments<T, S>(parts: &mut Parts, state: &S) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    Path::<T>::from_request_parts(parts, state)
        .await
        .map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("the URL's path: {}", e.body_text())))
}

/// `{type}/{id}` of the URL (the first two segments the route captures).
pub(crate) struct Instance {
    pub rtype: ResourceType,
    pub id: ResourceId,
}

impl<S: Send + Sync> FromRequestParts<S> for Instance {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (ty, id): (String, String) = segments(parts, state).await?;
        Ok(Instance {
            rtype: rtype(&ty)?,
            id: rid(&id)?,
        })
    }
}

/// `{type}` of the URL (the one segment the route captures).
pub(crate) struct TypeOf(pub ResourceType);

impl<S: Send + Sync> FromRequestParts<S> for TypeOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ty: String = segments(parts, state).await?;
        Ok(TypeOf(rtype(&ty)?))
    }
}
