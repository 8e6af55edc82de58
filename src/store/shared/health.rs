//! The write probe behind `GET /health`.
//!
//! Compiled once per backend (see `store/mod.rs`).

use super::Backend;
use crate::store::StoreError;

impl Backend {
    pub(crate) async fn probe_write(&self, now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO health_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
