//! Secrets the server generates on first use and keeps in its data directory, readable
//! only by the account that runs it: `secrets/` is created 0700 and each file 0600, and
//! an existing file that others could read is refused rather than used.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use oxehr_auth::token::SigningKey;

/// `<data>/secrets/token-signing-key`: 32 raw bytes.
pub fn token_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("token-signing-key")
}

/// The token signing key, generated (and stored 0600) the first time it is needed.
pub fn token_signing_key(data_dir: &Path) -> Result<SigningKey> {
    let path = token_key_path(data_dir);
    let bytes = key_file(data_dir, &path, "token signing key", || {
        SigningKey::generate().as_bytes().to_vec()
    })?;
    SigningKey::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}; remove it to generate a new key", path.display()))
}

/// `<data>/secrets/secrets-key`: 32 raw bytes, the key TOTP secrets are sealed with in
/// the database. Losing it means enrolling every authenticator again
/// (`oxehr user enrol-mfa`); keep it with the backups, apart from the database.
pub fn secrets_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("secrets-key")
}

/// The key secrets are sealed with at rest, generated (and stored 0600) the first time.
pub fn secrets_key(data_dir: &Path) -> Result<oxehr_auth::SecretKey> {
    let path = secrets_key_path(data_dir);
    let bytes = key_file(data_dir, &path, "secrets key", || {
        oxehr_auth::SecretKey::generate().as_bytes().to_vec()
    })?;
    oxehr_auth::SecretKey::from_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; it is needed to read the authenticator secrets",
            path.display()
        )
    })
}

/// A key file's bytes: read (refused when others could read it), or made with `make`
/// and written 0600 the first time.
fn key_file(
    data_dir: &Path,
    path: &Path,
    what: &str,
    make: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    let dir = path.parent().unwrap_or(data_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            let key = make();
            f.write_all(&key)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the {what}");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mode = f.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {mode:03o}); make it 0600 (chmod 600) or remove it to generate a new key",
            path.display()
        );
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// `<data>/secrets/initial-admin-password`: the first administrator's password.
pub fn initial_admin_password_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("initial-admin-password")
}

/// Writes `password` to a new 0600 file in `<data>/secrets/` (never overwriting one).
pub fn write_new_secret(path: &Path, password: &str) -> Result<()> {
    let dir = path.parent().context("a secret's path has a directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(format!("{password}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// A TLS acceptor from a certificate chain and its private key (PEM files), for the
/// MLLP listener (the HTTPS server reads the same files through axum-server).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading the TLS certificate {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("reading the TLS key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("the TLS certificate and key do not fit: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}
