//! `mailha-pkg gen|check|rpm`: the packaging's build tool (see lib.rs).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mailha-pkg",
    about = "mailha's packaging: generated docs, checks, the .rpm"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rewrite dist/man and dist/completions from the code.
    Gen,
    /// Fail, naming each file, when dist/ or the package's version is out
    /// of step with the code (scripts/build-deb.sh runs this first).
    Check,
    /// Print mailha's version (Cargo.toml's, as `mailha --version` has it).
    Version,
    /// Build the .rpm from a `mailha install --root STAGE` of the binary to ship.
    Rpm {
        #[arg(long)]
        stage: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let repo = mailha_pkg::repo();
    match Cli::parse().command {
        Cmd::Gen => match mailha_pkg::write(&repo.join("dist")) {
            Ok(changed) => {
                for c in &changed {
                    println!("wrote dist/{c}");
                }
                if changed.is_empty() {
                    println!("dist/ is up to date");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mailha-pkg: writing dist/: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Check => {
            let problems = mailha_pkg::check(&repo);
            if problems.is_empty() {
                return ExitCode::SUCCESS;
            }
            for p in &problems {
                eprintln!("mailha-pkg: {p}");
            }
            eprintln!(
                "mailha-pkg: the package would not match the code; regenerate with `{}` and review the diff",
                mailha_pkg::REGENERATE
            );
            ExitCode::FAILURE
        }
        Cmd::Version => {
            println!("{}", mailha_pkg::man::version());
            ExitCode::SUCCESS
        }
        Cmd::Rpm { stage, out } => {
            match mailha_pkg::rpm::build(&stage, &mailha_pkg::man::version(), &out) {
                Ok(()) => {
                    println!("{}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mailha-pkg: building {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
