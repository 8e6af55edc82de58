//! The `herald` binary: parse the command line and run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(unix)]
    bus_error::report();
    herald::cli::main()
}

/// SQLite maps its `-shm` file (the WAL index) into memory. When that file stops taking
/// writes underneath a running herald (made immutable, its disk gone), the next write to the
/// mapping raises SIGBUS, which would end the process with no word. This turns it into one
/// line on stderr and exit status 74 (EX_IOERR). Nothing can be done safely in the process
/// after such a fault, so it stops at once, as after `kill -9`: everything committed stays,
/// and the next run takes back the rows that were in flight.
#[cfg(unix)]
mod bus_error {
    const MESSAGE: &[u8] = b"herald: a memory-mapped database file (the -shm file beside the \
        database) can no longer be written (SIGBUS); stopped at once. What was recorded is \
        kept, and copies in flight may be sent again when the send resumes. Make the \
        database files writable, then run the same command again.\n";

    extern "C" fn on_bus_error(_: libc::c_int) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe; MESSAGE is static.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(74);
        }
    }

    pub fn report() {
        // SAFETY: a zeroed sigaction is a valid value (no flags, empty mask), and the
        // handler only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_bus_error as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    }
}
