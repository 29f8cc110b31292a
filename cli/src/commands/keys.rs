//! `bonus keys new`: a partner API key with its checksum.

use bonus_domain::member::{hash_api_key, new_api_key};
use bonus_domain::random::OsRandom;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new API key and its SHA-256. Put the key (or, better, `key_sha256`) under the
    /// partner's `api_keys` in the config file and `bonus apply` it; hand the key to the
    /// partner once. Keys carry a checksum, so the API refuses a made-up key without a read.
    New,
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::New => {
            let key = new_api_key(&OsRandom);
            println!("key:        {key}");
            println!("key_sha256: {}", hash_api_key(&key));
            Ok(())
        }
    }
}
