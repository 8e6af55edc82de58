//! The subscriber import reader (`subscribers::Rows`) on arbitrary bytes: an uploaded file
//! is outside input, so reading it must never panic, lines never go backwards, and every row
//! it rejects carries a reason.
//!
//! Run: `cargo +nightly fuzz run csv_rows -- -max_total_time=600`

#![no_main]

use herald::domain::SubscriberStatus;
use herald::subscribers::Rows;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut rows) = Rows::new(data, SubscriberStatus::Active) else {
        return;
    };
    let mut last_line = 0;
    while let Ok(Some(row)) = rows.next_row() {
        assert!(
            row.line >= last_line,
            "line {} after {}",
            row.line,
            last_line
        );
        last_line = row.line;
        if let Err(reason) = &row.parsed {
            assert!(
                !reason.trim().is_empty(),
                "line {} rejected without a reason",
                row.line
            );
        }
        assert!(rows.bytes_read() <= data.len() as u64);
    }
});
