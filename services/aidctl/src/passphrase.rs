//! Passphrases of encrypted key files: from `AIDLEDGER_KEY_PASSPHRASE`
//! (for scripts and services), else asked on the terminal without echo.
//! Never from a command-line argument, which other users can read in the
//! process list.

use anyhow::{Context as _, Result, bail};
use std::io::IsTerminal as _;

use aidledger_tlog::ed25519::Zeroizing;

/// Where a script or a service gives the passphrase.
pub const PASSPHRASE_ENV: &str = "AIDLEDGER_KEY_PASSPHRASE";
/// Shortest passphrase a new key file takes: PBKDF2 slows guessing, it
/// does not make a short passphrase strong.
pub const PASSPHRASE_CHARS_MIN: usize = 12;

/// The passphrase of an existing key file, `what` naming it in the prompt.
pub fn existing(what: &str) -> Result<Zeroizing<String>> {
    if let Some(passphrase) = from_env()? {
        return Ok(passphrase);
    }
    prompt(&format!("Passphrase of {what}: "))
}

/// A passphrase for a new key file, typed twice on a terminal.
pub fn new_one() -> Result<Zeroizing<String>> {
    let passphrase = match from_env()? {
        Some(passphrase) => passphrase,
        None => {
            let first = prompt("Passphrase for the new key: ")?;
            let second = prompt("The same passphrase again: ")?;
            if *first != *second {
                bail!("the two passphrases differ; nothing was written");
            }
            first
        }
    };
    if passphrase.chars().count() < PASSPHRASE_CHARS_MIN {
        bail!(
            "the passphrase has fewer than {PASSPHRASE_CHARS_MIN} characters; a longer one (several words) protects the key if the file is copied"
        );
    }
    Ok(passphrase)
}

fn from_env() -> Result<Option<Zeroizing<String>>> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(passphrase) => Ok(Some(Zeroizing::new(passphrase))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not UTF-8"),
    }
}

fn prompt(text: &str) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "the key is encrypted: set {PASSPHRASE_ENV}, or run on a terminal to be asked for the passphrase"
        );
    }
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .context("reading the passphrase from the terminal")
}
