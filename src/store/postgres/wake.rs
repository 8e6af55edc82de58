//! `LISTEN`/`NOTIFY` on PostgreSQL, for [`crate::store::wake`].

use sqlx::postgres::{PgListener, PgPool};

use super::Backend;
use crate::store::wake::Heard;
use crate::store::StoreError;

impl Backend {
    pub(crate) async fn notify_nodes(&self, channel: &str, topic: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(topic)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn wake_listener(&self, channel: &str) -> Result<WakeListener, StoreError> {
        let mut listener = WakeListener {
            pool: self.pool.clone(),
            channel: channel.to_string(),
            listener: None,
        };
        listener.connect().await?;
        Ok(listener)
    }
}

/// A listening connection, opened again whenever it is lost.
pub(crate) struct WakeListener {
    pool: PgPool,
    channel: String,
    listener: Option<PgListener>,
}

impl WakeListener {
    async fn connect(&mut self) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.channel).await?;
        self.listener = Some(listener);
        Ok(())
    }

    pub(crate) async fn next(&mut self) -> Result<Heard, StoreError> {
        let Some(listener) = self.listener.as_mut() else {
            self.connect().await?;
            return Ok(Heard::Reconnected);
        };
        match listener.try_recv().await {
            Ok(Some(notification)) => Ok(Heard::Topic(notification.payload().to_string())),
            // sqlx noticed the connection end and listens again on a new one.
            Ok(None) => Ok(Heard::Reconnected),
            Err(e) => {
                // Ended by the server (a restart, a terminated backend) or unusable: drop it,
                // and open a new one on the next call.
                self.listener = None;
                Err(e.into())
            }
        }
    }
}
