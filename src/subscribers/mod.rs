//! Subscriber list operations above the store: streaming CSV import and export.
//!
//! The SQL stays in [`crate::store`]; this module owns the file formats, batching and
//! reporting.

pub mod export;
pub mod import;

pub use export::{export_csv, ExportError};
pub use import::{
    import_csv, ImportError, ImportEvent, ImportOptions, ImportSummary, Rejection, Row, Rows,
};
