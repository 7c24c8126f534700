//! The registered OAuth clients over a store: register, list, disable or enable. The
//! rules of a registration (client id, redirect URIs, keys, scopes) are
//! [`crate::oauth`]'s `check_*` functions; the rows are `oxehr_store::oauth`. Every
//! change is one write transaction.

use std::sync::Arc;

use oxehr_store::{Store, StoreError};

use crate::AuthError;

pub use oxehr_store::oauth::ClientRow;

fn store_err(e: StoreError) -> AuthError {
    AuthError::Internal(format!("storage: {e}"))
}

/// Runs one write job that answers a `bool`.
fn write_flag(
    store: &Arc<dyn Store>,
    mut job: impl FnMut(&mut dyn oxehr_store::Tx) -> Result<bool, StoreError> + Send + 'static,
) -> Result<bool, AuthError> {
    let out = store
        .write(Box::new(move |tx| Ok(Box::new(job(tx)?))))
        .map_err(store_err)?;
    out.downcast::<bool>()
        .map(|b| *b)
        .map_err(|_| AuthError::Internal("unexpected job output".into()))
}

/// Registers a client (already checked by the caller). Fails, writing nothing, when
/// the client id is taken.
pub fn add(store: &Arc<dyn Store>, row: ClientRow) -> Result<ClientRow, AuthError> {
    let r = row.clone();
    if !write_flag(store, move |tx| oxehr_store::oauth::insert_client(tx, &r))? {
        return Err(AuthError::Invalid(format!(
            "the client id {} is taken",
            row.client_id
        )));
    }
    Ok(row)
}

/// Every registered client, by id.
pub fn list(store: &Arc<dyn Store>) -> Result<Vec<ClientRow>, AuthError> {
    let mut tx = store.read().map_err(store_err)?;
    oxehr_store::oauth::list_clients(tx.as_mut()).map_err(store_err)
}

/// Disables a client (it gets no more tokens, and its backend tokens stop working) or
/// enables it again.
pub fn set_disabled(
    store: &Arc<dyn Store>,
    client_id: &str,
    disabled: bool,
) -> Result<(), AuthError> {
    let id = client_id.to_owned();
    let found = write_flag(store, move |tx| {
        oxehr_store::oauth::set_client_disabled(tx, &id, disabled)
    })?;
    if !found {
        return Err(AuthError::NotFound(format!("no client {client_id}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ClientRow {
        ClientRow {
            client_id: id.into(),
            name: "Growth chart".into(),
            kind: "public".into(),
            redirect_uris: r#"["https://app.example/cb"]"#.into(),
            jwks: None,
            scope: String::new(),
            disabled: false,
            created: 0,
        }
    }

    #[test]
    fn a_client_id_is_registered_once_and_can_be_disabled_and_enabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            oxehr_store_sqlite::SqliteStore::open(&dir.path().join("t.sqlite"), Default::default())
                .expect("open"),
        );
        assert_eq!(add(&store, row("app")).expect("add"), row("app"));
        assert!(matches!(
            add(&store, row("app")),
            Err(AuthError::Invalid(_))
        ));
        set_disabled(&store, "app", true).expect("disable");
        assert_eq!(
            list(&store).expect("list"),
            vec![ClientRow {
                disabled: true,
                ..row("app")
            }]
        );
        set_disabled(&store, "app", false).expect("enable");
        assert!(!list(&store).expect("list")[0].disabled);
        assert!(matches!(
            set_disabled(&store, "other", true),
            Err(AuthError::NotFound(_))
        ));
    }
}
