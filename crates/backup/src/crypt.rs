//! Encryption to age recipients (X25519, `age1…`), and the identities that decrypt.

use std::io::{Read, Write};
use std::path::Path;

use crate::Error;

/// The identities read from an age identity file (`AGE-SECRET-KEY-1…` lines).
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys)", self.0.len())
    }
}

impl Identities {
    /// No identity: encrypted content cannot be read.
    pub fn none() -> Identities {
        Identities(Vec::new())
    }

    /// Whether there is any identity.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses an age X25519 recipient (`age1…`).
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, Error> {
    s.trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|e| Error::Crypt(format!("{:?} is not an age recipient: {e}", s.trim())))
}

/// Reads an age identity file. The error names the file, never its content.
pub fn read_identities(path: &Path) -> Result<Identities, Error> {
    let file = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
        .map_err(Error::io("read the identity file", path))?;
    let ids = file
        .into_identities()
        .map_err(|e| Error::Crypt(format!("{}: not an age identity file: {e}", path.display())))?;
    if ids.is_empty() {
        return Err(Error::Crypt(format!(
            "{}: holds no identity",
            path.display()
        )));
    }
    Ok(Identities(ids))
}

/// A new identity: (secret key line, public recipient).
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    (id.to_string().expose_secret().to_string(), public)
}

/// Copies `input` to `output`, encrypted to `recipients`.
pub(crate) fn encrypt_copy<W: Write>(
    recipients: &[age::x25519::Recipient],
    input: &mut dyn Read,
    output: W,
) -> Result<W, Error> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::Crypt(format!("cannot encrypt: {e}")))?;
    let mut w = enc
        .wrap_output(output)
        .map_err(|e| Error::Crypt(format!("cannot encrypt: {e}")))?;
    std::io::copy(input, &mut w).map_err(|e| Error::Crypt(format!("cannot encrypt: {e}")))?;
    w.finish()
        .map_err(|e| Error::Crypt(format!("cannot encrypt: {e}")))
}

/// A reader of the plaintext of an encrypted `input`.
pub(crate) fn decrypt_reader<'a, R: Read + 'a>(
    ids: &Identities,
    input: R,
    what: &str,
) -> Result<Box<dyn Read + 'a>, Error> {
    let dec = age::Decryptor::new(input)
        .map_err(|e| Error::Crypt(format!("{what}: not an age file: {e}")))?;
    let r = dec
        .decrypt(ids.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| Error::Crypt(format!("{what}: cannot decrypt: {e}")))?;
    Ok(Box::new(r))
}
