//! Queries on `nodes` and on who sent each delivery.
//!
//! Compiled once per backend (see `store/mod.rs`).

use super::Backend;
use crate::store::nodes::{NodeRow, SentByNode, NODE_ROW_KEPT_SECONDS};
use crate::store::StoreError;

impl Backend {
    pub(crate) async fn node_heartbeat(
        &self,
        id: &str,
        role: &str,
        started_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO nodes (id, role, started_at, last_seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, \
             started_at = excluded.started_at, last_seen_at = excluded.last_seen_at",
        )
        .bind(id)
        .bind(role)
        .bind(started_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE last_seen_at < $1")
            .bind(now - NODE_ROW_KEPT_SECONDS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn forget_node(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn nodes_seen_since(&self, since: i64) -> Result<Vec<NodeRow>, StoreError> {
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT n.id, n.role, n.started_at, n.last_seen_at, \
                    (SELECT COUNT(*) FROM deliveries d \
                     WHERE d.sent_by = n.id AND d.status = 'sent') \
             FROM nodes n WHERE n.last_seen_at >= $1 ORDER BY n.id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, role, started_at, last_seen_at, sent)| NodeRow {
                id,
                role,
                started_at,
                last_seen_at,
                sent: sent.max(0) as u64,
            })
            .collect())
    }

    pub(crate) async fn sent_by_node(&self, issue_id: i64) -> Result<Vec<SentByNode>, StoreError> {
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT sent_by, COUNT(*) FROM deliveries \
             WHERE issue_id = $1 AND status = 'sent' \
             GROUP BY sent_by ORDER BY COUNT(*) DESC, sent_by",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(node, sent)| SentByNode {
                node,
                sent: sent.max(0) as u64,
            })
            .collect())
    }
}
