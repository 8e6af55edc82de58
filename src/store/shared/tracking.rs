//! Queries on the tracking tables and the report's per-issue figures (see
//! `store/tracking.rs`).
//!
//! Compiled once per backend (see `store/mod.rs`): `Backend`, `Connection`, `Row` and `sql`
//! are that backend's. Sums are cast to BIGINT, which PostgreSQL would otherwise widen to
//! NUMERIC.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row as _;

use super::{Backend, Connection};
use crate::store::{
    AgentFigures, Hit, HitKind, HourFigures, IssueActivity, LinkFigures, NewTrackedLink, StoreError,
};

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl Backend {
    pub(crate) async fn record_tracked_links(
        &self,
        issue_id: i64,
        links: &[NewTrackedLink],
    ) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for link in links {
            sqlx::query(
                "INSERT INTO tracked_links (issue_id, link, url, position) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (issue_id, link) DO NOTHING",
            )
            .bind(issue_id)
            .bind(&link.link)
            .bind(&link.url)
            .bind(link.position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn tracked_links(
        &self,
        issue_id: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT link, url FROM tracked_links WHERE issue_id = $1 ORDER BY position",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(crate) async fn record_hits(&self, hits: &[Hit]) -> Result<u64, StoreError> {
        if hits.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut issues: Vec<i64> = hits.iter().map(|h| h.issue_id).collect();
        issues.sort_unstable();
        issues.dedup();
        let mut known = HashSet::new();
        for id in issues {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                known.insert(id);
            }
        }
        let hits: Vec<&Hit> = hits
            .iter()
            .filter(|h| known.contains(&h.issue_id))
            .collect();

        // Counts, summed in memory first: one statement per link, hour and agent class.
        let mut per_link: BTreeMap<(i64, &str), i64> = BTreeMap::new();
        let mut per_hour: BTreeMap<(i64, i64), [i64; 3]> = BTreeMap::new();
        let mut per_agent: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
        let mut scopes: Vec<(i64, &str, &[u8; 16])> = Vec::new();
        for hit in &hits {
            let hour = hit.at.div_euclid(3600) * 3600;
            let counts = per_hour.entry((hit.issue_id, hour)).or_default();
            match &hit.kind {
                HitKind::Click { link } => {
                    *per_link.entry((hit.issue_id, link.as_str())).or_default() += 1;
                    counts[0] += 1;
                    *per_agent
                        .entry((hit.issue_id, "click", hit.agent))
                        .or_default() += 1;
                    scopes.push((hit.issue_id, "click", &hit.reader));
                    scopes.push((hit.issue_id, link.as_str(), &hit.reader));
                }
                HitKind::Open { machine } => {
                    if *machine {
                        counts[2] += 1;
                    } else {
                        counts[1] += 1;
                        scopes.push((hit.issue_id, "open", &hit.reader));
                    }
                    *per_agent
                        .entry((hit.issue_id, "open", hit.agent))
                        .or_default() += 1;
                }
            }
        }
        // Unique readers: a reader new to a link adds one to its `readers`.
        scopes.sort_unstable();
        scopes.dedup();
        let mut new_readers: HashMap<(i64, &str), i64> = HashMap::new();
        for (issue_id, scope, reader) in scopes {
            let inserted = sqlx::query(
                "INSERT INTO tracking_readers (issue_id, scope, reader) VALUES ($1, $2, $3) \
                 ON CONFLICT (issue_id, scope, reader) DO NOTHING",
            )
            .bind(issue_id)
            .bind(scope)
            .bind(&reader[..])
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted > 0 && scope != "click" && scope != "open" {
                *new_readers.entry((issue_id, scope)).or_default() += 1;
            }
        }
        for ((issue_id, link), clicks) in &per_link {
            let readers = new_readers.get(&(*issue_id, *link)).copied().unwrap_or(0);
            sqlx::query(
                "UPDATE tracked_links SET clicks = clicks + $3, readers = readers + $4 \
                 WHERE issue_id = $1 AND link = $2",
            )
            .bind(issue_id)
            .bind(link)
            .bind(clicks)
            .bind(readers)
            .execute(&mut *tx)
            .await?;
        }
        for ((issue_id, hour), [clicks, opens, machine]) in &per_hour {
            sqlx::query(
                "INSERT INTO tracking_hours (issue_id, hour, clicks, opens, machine_opens) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (issue_id, hour) DO UPDATE SET \
                   clicks = tracking_hours.clicks + excluded.clicks, \
                   opens = tracking_hours.opens + excluded.opens, \
                   machine_opens = tracking_hours.machine_opens + excluded.machine_opens",
            )
            .bind(issue_id)
            .bind(hour)
            .bind(clicks)
            .bind(opens)
            .bind(machine)
            .execute(&mut *tx)
            .await?;
        }
        for ((issue_id, kind, agent), n) in &per_agent {
            sqlx::query(
                "INSERT INTO tracking_agents (issue_id, kind, agent, hits) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (issue_id, kind, agent) DO UPDATE SET \
                   hits = tracking_agents.hits + excluded.hits",
            )
            .bind(issue_id)
            .bind(kind)
            .bind(agent)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        for hit in hits.iter().filter(|h| h.subscriber_id.is_some()) {
            let (kind, link) = match &hit.kind {
                HitKind::Click { link } => ("click", link.as_str()),
                HitKind::Open { .. } => ("open", ""),
            };
            // An erased subscriber's hit is dropped, not an error.
            sqlx::query(
                "INSERT INTO tracking_subscribers \
                   (issue_id, subscriber_id, kind, link, first_at, last_at, hits) \
                 SELECT $1, id, $3, $4, $5, $5, 1 FROM subscribers WHERE id = $2 \
                 ON CONFLICT (issue_id, subscriber_id, kind, link) DO UPDATE SET \
                   last_at = excluded.last_at, hits = tracking_subscribers.hits + 1",
            )
            .bind(hit.issue_id)
            .bind(hit.subscriber_id)
            .bind(kind)
            .bind(link)
            .bind(hit.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(hits.len() as u64)
    }

    pub(crate) async fn issue_activity(
        &self,
        issue_id: i64,
        from: i64,
        to: i64,
    ) -> Result<IssueActivity, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let conn: &mut Connection = &mut conn;
        let unsubscribes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE issue_id = $1 AND kind = 'unsubscribe'",
        )
        .bind(issue_id)
        .fetch_one(&mut *conn)
        .await?;
        let totals = sqlx::query(
            "SELECT CAST(COALESCE(SUM(opens), 0) AS BIGINT) AS opens, \
                    CAST(COALESCE(SUM(machine_opens), 0) AS BIGINT) AS machine_opens \
             FROM tracking_hours WHERE issue_id = $1",
        )
        .bind(issue_id)
        .fetch_one(&mut *conn)
        .await?;
        let readers: Vec<(String, i64)> = sqlx::query_as(
            "SELECT scope, COUNT(*) FROM tracking_readers \
             WHERE issue_id = $1 AND scope IN ('click', 'open') GROUP BY scope",
        )
        .bind(issue_id)
        .fetch_all(&mut *conn)
        .await?;
        let readers_of = |scope: &str| {
            readers
                .iter()
                .find(|(s, _)| s == scope)
                .map_or(0, |(_, n)| count(*n))
        };
        let links: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT link, url, clicks, readers FROM tracked_links WHERE issue_id = $1 \
             ORDER BY clicks DESC, position",
        )
        .bind(issue_id)
        .fetch_all(&mut *conn)
        .await?;
        let links: Vec<LinkFigures> = links
            .into_iter()
            .map(|(link, url, total, unique)| LinkFigures {
                link,
                url,
                total: count(total),
                unique: count(unique),
            })
            .collect();

        let mut hours: BTreeMap<i64, HourFigures> = BTreeMap::new();
        let tracked: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT hour, clicks, opens, machine_opens FROM tracking_hours \
             WHERE issue_id = $1 AND hour >= $2 AND hour < $3",
        )
        .bind(issue_id)
        .bind(from.div_euclid(3600) * 3600)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
        for (hour, clicks, opens, machine) in tracked {
            let h = hours.entry(hour).or_default();
            h.clicks = count(clicks);
            h.opens = count(opens);
            h.machine_opens = count(machine);
        }
        let left: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (occurred_at / 3600) * 3600 AS hour, COUNT(*) FROM events \
             WHERE issue_id = $1 AND kind = 'unsubscribe' AND occurred_at >= $2 AND occurred_at < $3 \
             GROUP BY (occurred_at / 3600) * 3600",
        )
        .bind(issue_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
        for (hour, n) in left {
            hours.entry(hour).or_default().unsubscribes = count(n);
        }
        let bounced: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (received_at / 3600) * 3600 AS hour, COUNT(*) FROM bounces \
             WHERE issue_id = $1 AND kind = 'bounce' AND received_at >= $2 AND received_at < $3 \
             GROUP BY (received_at / 3600) * 3600",
        )
        .bind(issue_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
        for (hour, n) in bounced {
            hours.entry(hour).or_default().bounces = count(n);
        }
        let hours = hours
            .into_iter()
            .map(|(hour, mut h)| {
                h.hour = hour;
                h
            })
            .collect();
        let agents: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, agent, hits FROM tracking_agents WHERE issue_id = $1 \
             ORDER BY kind, hits DESC, agent",
        )
        .bind(issue_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(IssueActivity {
            unsubscribes: count(unsubscribes),
            clicks: links.iter().map(|l| l.total).sum(),
            unique_clickers: readers_of("click"),
            opens: count(totals.try_get("opens")?),
            unique_openers: readers_of("open"),
            machine_opens: count(totals.try_get("machine_opens")?),
            links,
            hours,
            agents: agents
                .into_iter()
                .map(|(kind, agent, hits)| AgentFigures {
                    kind,
                    agent,
                    hits: count(hits),
                })
                .collect(),
        })
    }
}
