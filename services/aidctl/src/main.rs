//! `aidctl`: the aidledger command line for agencies and operators. Keys,
//! the Genesis, submitting events written as JSON, importing bank
//! statements, and reading, following and proving entries, all through
//! `aidledger-client`, which verifies what the ledger answers.
//!
//! Boundary: a thin shell. The JSON form of events (`event_json`) and the
//! statement import (`statement`) are pure and tested on their own; the
//! commands only wire them to the client.
//!
//! Exit codes: 0 success; 1 error (bad input, unreachable ledger, server
//! error); 2 usage; 3 the ledger refused one or more events; 4 something the
//! ledger answered did not verify (leaf hash, chain, signature, checkpoint,
//! proof, or an `audit` check: the first failing seq and reason are printed).

mod audit;
mod cli;
mod commands;
mod donor;
mod event_json;
mod http;
mod passphrase;
mod statement;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    aidledger_alloc::init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("aidctl: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if commands::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aidctl: {error:#}");
            ExitCode::from(commands::exit_code(&error))
        }
    }
}
