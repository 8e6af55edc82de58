//! What a copy between databases (`store::copy`) needs from SQLite: the catalog of herald's
//! tables, a snapshot to read from, rows read as [`Value`]s by their stored type, and
//! multi-row inserts inside the copy's write transaction.

use std::collections::BTreeMap;

use futures::stream::{BoxStream, StreamExt};
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

use super::{Backend, Database, Row};
use crate::store::copy::{quote, Column, Kind, Table, Value};
use crate::store::StoreError;

impl Backend {
    /// Every table herald's migrations created (not SQLite's own, not the migrations'
    /// record), with its columns, primary key and the tables its foreign keys name.
    pub(crate) async fn copy_catalog(&self) -> Result<Vec<Table>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let columns = sqlx::query(
            "SELECT m.name AS tbl, p.name AS col, p.type AS decl, p.pk AS pk \
             FROM sqlite_schema m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
               AND m.name <> '_sqlx_migrations' \
             ORDER BY m.name, p.cid",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut tables: BTreeMap<String, (Table, Vec<(i64, String)>)> = BTreeMap::new();
        for row in &columns {
            let name: String = row.try_get("tbl")?;
            let column: String = row.try_get("col")?;
            let declared: String = row.try_get("decl")?;
            let pk: i64 = row.try_get("pk")?;
            let (table, key) = tables.entry(name.clone()).or_insert_with(|| {
                (
                    Table {
                        name,
                        columns: Vec::new(),
                        primary_key: Vec::new(),
                        parents: Default::default(),
                    },
                    Vec::new(),
                )
            });
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            table.columns.push(Column {
                name: column,
                kind: declared_kind(&declared),
                identity: false,
            });
        }
        let parents = sqlx::query(
            "SELECT m.name AS tbl, f.\"table\" AS parent \
             FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table'",
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in &parents {
            let name: String = row.try_get("tbl")?;
            let parent: String = row.try_get("parent")?;
            if let Some((table, _)) = tables.get_mut(&name) {
                table.parents.insert(parent);
            }
        }
        Ok(tables
            .into_values()
            .map(|(mut table, mut key)| {
                key.sort();
                table.primary_key = key.into_iter().map(|(_, c)| c).collect();
                table
            })
            .collect())
    }

    /// A read transaction: its first read fixes the snapshot every later read sees.
    pub(crate) async fn begin_copy_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// The copy's write transaction, which holds the write lock from its start.
    pub(crate) async fn begin_copy_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        self.begin_write().await
    }
}

/// The kind of value a column declared with `declared` holds, by SQLite's affinity rules.
fn declared_kind(declared: &str) -> Kind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        Kind::Int
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Kind::Text
    } else if t.contains("BLOB") || t.is_empty() {
        Kind::Bytes
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Kind::Real
    } else {
        Kind::Int
    }
}

/// The rows in `table`.
pub(crate) async fn count(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
    Ok(sqlx::query_scalar(&sql).fetch_one(conn).await?)
}

/// The rows `select` answers, each value as it is stored.
pub(crate) fn rows<'a>(
    conn: &'a mut sqlx::SqliteConnection,
    select: &'a str,
) -> BoxStream<'a, Result<Vec<Value>, StoreError>> {
    sqlx::query(select)
        .fetch(conn)
        .map(|row| decode(&row?))
        .boxed()
}

fn decode(row: &Row) -> Result<Vec<Value>, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => Value::Int(row.try_get_unchecked(i)?),
                "REAL" => Value::Real(row.try_get_unchecked(i)?),
                "TEXT" => Value::Text(row.try_get_unchecked(i)?),
                _ => Value::Bytes(row.try_get_unchecked(i)?),
            }
        };
        values.push(value);
    }
    Ok(values)
}

/// Runs the multi-row `insert` with `rows`; a null is bound as its column's kind.
pub(crate) async fn insert(
    conn: &mut sqlx::SqliteConnection,
    insert: &str,
    kinds: &[Kind],
    rows: &[Vec<Value>],
) -> Result<(), StoreError> {
    let mut query = sqlx::query(insert);
    for row in rows {
        for (value, kind) in row.iter().zip(kinds) {
            query = match value {
                Value::Null => match kind {
                    Kind::Int | Kind::Bool => query.bind(None::<i64>),
                    Kind::Real => query.bind(None::<f64>),
                    Kind::Text | Kind::Json => query.bind(None::<String>),
                    Kind::Bytes => query.bind(None::<Vec<u8>>),
                },
                Value::Int(n) => query.bind(*n),
                Value::Bool(b) => query.bind(i64::from(*b)),
                Value::Real(x) => query.bind(*x),
                Value::Text(s) => query.bind(s.as_str()),
                Value::Json(j) => query.bind(j.to_string()),
                Value::Bytes(b) => query.bind(b.as_slice()),
            };
        }
    }
    query.execute(conn).await?;
    Ok(())
}
