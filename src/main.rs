//! The `herald` binary: parse the command line and run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    herald::cli::main()
}
