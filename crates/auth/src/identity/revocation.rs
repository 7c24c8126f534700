//! Token revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::{json, Value};

use oxehr_store::oauth as rows;
use oxehr_store::StoreError;

use super::bearer::token_is_current;
use super::grants::{required, GrantError};
use super::{secs, Identity};
use crate::token;
use crate::{oauth, Caller, Role};

/// A revocation request's form parameters (empty ones as absent).
#[derive(Default, Clone)]
pub struct RevokeRequest {
    pub token: Option<String>,
    pub client_id: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// Prints neither the token nor the assertion.
impl std::fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeRequest")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Revokes a token (RFC 7009). A public client names itself with `client_id`, a
    /// backend service signs a client assertion (audience `token_endpoint`). An access
    /// token is revoked by its `jti`; a refresh token revokes its whole grant (every
    /// refresh and access token of it). Unknown, expired or malformed tokens are no
    /// error (§2.2); another client's token is (`unauthorized_client`).
    pub fn revoke(&self, req: &RevokeRequest, token_endpoint: &str) -> Result<(), GrantError> {
        let client = if req.client_assertion.is_some() {
            let (client, assertion) = self.backend_client(
                &req.client_assertion_type,
                &req.client_assertion,
                &req.client_id,
                token_endpoint,
            )?;
            let issuer = format!("assertion:{}", client.client_id);
            let fresh = self
                .write(move |tx| {
                    rows::first_use_of_jti(tx, &issuer, &assertion.jti, secs(assertion.exp))
                })
                .map_err(GrantError::storage)?;
            if !fresh {
                return Err(GrantError::new(
                    "invalid_client",
                    "the client assertion's jti was already used",
                ));
            }
            client
        } else {
            self.public_client(&req.client_id)?
        };
        let value = required(&req.token, "token")?.to_owned();
        let (id, now) = (self.clone(), self.now());
        self.write(move |tx| {
            let refused = || {
                Ok(Err(GrantError::new(
                    "unauthorized_client",
                    "the token was issued to another client",
                )))
            };
            if let Ok(claims) = token::verify(id.key(), &value, id.issuer(), id.issuer(), now) {
                if let Some(row) = rows::get_access(tx, &claims.jti)? {
                    if row.client_id != client.client_id {
                        return refused();
                    }
                    rows::revoke_access(tx, &claims.jti)?;
                }
            } else if let Some(row) = rows::get_refresh(tx, &oauth::secret_hash(&value))? {
                if row.client_id != client.client_id {
                    return refused();
                }
                rows::revoke_grant(tx, &row.grant_id)?;
            }
            Ok(Ok(()))
        })
        .map_err(GrantError::storage)??;
        self.forget_current_tokens();
        Ok(())
    }

    /// Introspects `value` (an access or refresh token) for `caller` (RFC 7662): a
    /// system administrator or backend service may introspect any token, anyone else
    /// only their own. Inactive, unknown or others' tokens answer `{"active": false}`
    /// and nothing more.
    pub fn introspect(&self, caller: &Caller, value: &str) -> Result<Value, GrantError> {
        self.introspect_in_store(caller, value)
            .map_err(GrantError::storage)
    }

    fn introspect_in_store(&self, caller: &Caller, value: &str) -> Result<Value, StoreError> {
        let privileged = caller.role == Role::SystemAdmin;
        let me = &caller.user;
        let now = self.now();
        let mut tx = self.store().read()?;
        let inactive = json!({"active": false});
        if let Ok(c) = token::verify(self.key(), value, self.issuer(), self.issuer(), now) {
            if !(privileged || c.sub == *me) || !token_is_current(tx.as_mut(), &c)? {
                return Ok(inactive);
            }
            let row = rows::get_access(tx.as_mut(), &c.jti)?;
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": c.scope,
                "sub": c.sub,
                "exp": c.exp,
                "iat": c.iat,
                "iss": c.iss,
                "aud": c.aud,
            });
            match c.sub.strip_prefix("client:") {
                Some(id) => body["client_id"] = json!(id),
                None => {
                    body["username"] = json!(c.sub);
                    if let Some(r) = row {
                        body["client_id"] = json!(r.client_id);
                    }
                }
            }
            if let Some(p) = c.patient {
                body["patient"] = json!(p);
            }
            if let Some(u) = c.fhir_user {
                body["fhirUser"] = json!(u);
            }
            return Ok(body);
        }
        let Some(r) = rows::get_refresh(tx.as_mut(), &oauth::secret_hash(value))? else {
            return Ok(inactive);
        };
        let live = !r.used
            && !r.revoked
            && r.expires > secs(now)
            && (privileged || r.account == *me)
            && oxehr_store::accounts::get(tx.as_mut(), &r.account)?.is_some_and(|a| !a.disabled);
        if !live {
            return Ok(inactive);
        }
        let mut body = json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": r.scope,
            "client_id": r.client_id,
            "username": r.account,
            "sub": r.account,
            "exp": r.expires,
        });
        if let Some(p) = r.patient {
            body["patient"] = json!(p);
        }
        Ok(body)
    }
}
