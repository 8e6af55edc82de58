//! What a copy between databases (`store::copy`) needs from PostgreSQL: the catalog of
//! herald's tables in the current schema, a snapshot to read from, rows read as [`Value`]s
//! by their column types, multi-row inserts inside one transaction that has locked every
//! table against other writers, and identity sequences moved past the copied ids.

use std::collections::BTreeMap;

use futures::stream::{BoxStream, StreamExt};
use sqlx::types::Json;
use sqlx::{Column as _, Row as _, TypeInfo as _};

use super::{Backend, Database, Row};
use crate::store::copy::{quote, Column, Kind, Table, Value};
use crate::store::StoreError;

impl Backend {
    /// Every table of the current schema but the migrations' record, with its columns,
    /// primary key and the tables its foreign keys name.
    pub(crate) async fn copy_catalog(&self) -> Result<Vec<Table>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let columns = sqlx::query(
            "SELECT c.table_name::text AS tbl, c.column_name::text AS col, \
                    c.data_type::text AS ty, \
                    (c.is_identity = 'YES' OR COALESCE(c.column_default, '') LIKE 'nextval(%') \
                        AS identity \
             FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
               AND c.table_name <> '_sqlx_migrations' \
             ORDER BY c.table_name, c.ordinal_position",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for row in &columns {
            let name: String = row.try_get("tbl")?;
            let column: String = row.try_get("col")?;
            let ty: String = row.try_get("ty")?;
            let identity: bool = row.try_get("identity")?;
            let kind = type_kind(&ty).ok_or_else(|| {
                StoreError::BadValue(format!(
                    "{name}.{column} has the type {ty}, which db copy does not know"
                ))
            })?;
            tables
                .entry(name.clone())
                .or_insert_with(|| Table {
                    name,
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    parents: Default::default(),
                })
                .columns
                .push(Column {
                    name: column,
                    kind,
                    identity,
                });
        }
        let keys = sqlx::query(
            "SELECT cl.relname::text AS tbl, a.attname::text AS col \
             FROM pg_index i \
             JOIN pg_class cl ON cl.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum = ANY (i.indkey) \
             WHERE i.indisprimary AND n.nspname = current_schema() \
             ORDER BY cl.relname, array_position(i.indkey::int2[], a.attnum)",
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in &keys {
            let name: String = row.try_get("tbl")?;
            if let Some(table) = tables.get_mut(&name) {
                table.primary_key.push(row.try_get("col")?);
            }
        }
        let parents = sqlx::query(
            "SELECT cl.relname::text AS tbl, pa.relname::text AS parent \
             FROM pg_constraint co \
             JOIN pg_class cl ON cl.oid = co.conrelid \
             JOIN pg_class pa ON pa.oid = co.confrelid \
             JOIN pg_namespace n ON n.oid = cl.relnamespace \
             WHERE co.contype = 'f' AND n.nspname = current_schema()",
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in &parents {
            let name: String = row.try_get("tbl")?;
            if let Some(table) = tables.get_mut(&name) {
                table.parents.insert(row.try_get("parent")?);
            }
        }
        Ok(tables.into_values().collect())
    }

    /// A read-only transaction on one snapshot (repeatable read).
    pub(crate) async fn begin_copy_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?)
    }

    /// The copy's write transaction, with `tables` locked against other writers (readers
    /// may still read them) until it ends.
    pub(crate) async fn begin_copy_write(
        &self,
        tables: &[&str],
    ) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        let mut tx = self.begin_write().await?;
        if !tables.is_empty() {
            let names: Vec<String> = tables.iter().map(|t| quote(t)).collect();
            let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "));
            sqlx::query(&lock).execute(&mut *tx).await?;
        }
        Ok(tx)
    }
}

/// The kind of value a column of the SQL type `ty` (as `information_schema` names it) holds.
fn type_kind(ty: &str) -> Option<Kind> {
    Some(match ty {
        "bigint" | "integer" | "smallint" => Kind::Int,
        "text" | "character varying" | "character" => Kind::Text,
        "jsonb" | "json" => Kind::Json,
        "bytea" => Kind::Bytes,
        "boolean" => Kind::Bool,
        "double precision" | "real" => Kind::Real,
        _ => return None,
    })
}

/// The rows in `table`.
pub(crate) async fn count(conn: &mut sqlx::PgConnection, table: &str) -> Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
    Ok(sqlx::query_scalar(&sql).fetch_one(conn).await?)
}

/// The rows `select` answers, each value by its column's type.
pub(crate) fn rows<'a>(
    conn: &'a mut sqlx::PgConnection,
    select: &'a str,
) -> BoxStream<'a, Result<Vec<Value>, StoreError>> {
    sqlx::query(select)
        .fetch(conn)
        .map(|row| decode(&row?))
        .boxed()
}

fn decode(row: &Row) -> Result<Vec<Value>, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_info().name();
        let value = match ty {
            "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
            "INT4" => row
                .try_get::<Option<i32>, _>(i)?
                .map(|n| Value::Int(n.into())),
            "INT2" => row
                .try_get::<Option<i16>, _>(i)?
                .map(|n| Value::Int(n.into())),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                row.try_get::<Option<String>, _>(i)?.map(Value::Text)
            }
            "JSONB" | "JSON" => row
                .try_get::<Option<Json<serde_json::Value>>, _>(i)?
                .map(|j| Value::Json(j.0)),
            "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
            "BOOL" => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
            "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
            "FLOAT4" => row
                .try_get::<Option<f32>, _>(i)?
                .map(|x| Value::Real(x.into())),
            other => {
                return Err(StoreError::BadValue(format!(
                    "{} has the type {other}, which db copy does not know",
                    column.name()
                )))
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(values)
}

/// Runs the multi-row `insert` with `rows`; a null is bound as its column's kind.
pub(crate) async fn insert(
    conn: &mut sqlx::PgConnection,
    insert: &str,
    kinds: &[Kind],
    rows: &[Vec<Value>],
) -> Result<(), StoreError> {
    let mut query = sqlx::query(insert);
    for row in rows {
        for (value, kind) in row.iter().zip(kinds) {
            query = match value {
                Value::Null => match kind {
                    Kind::Int => query.bind(None::<i64>),
                    Kind::Bool => query.bind(None::<bool>),
                    Kind::Real => query.bind(None::<f64>),
                    Kind::Text => query.bind(None::<String>),
                    Kind::Json => query.bind(None::<Json<serde_json::Value>>),
                    Kind::Bytes => query.bind(None::<Vec<u8>>),
                },
                Value::Int(n) => query.bind(*n),
                Value::Bool(b) => query.bind(*b),
                Value::Real(x) => query.bind(*x),
                Value::Text(s) => query.bind(s.as_str()),
                Value::Json(j) => query.bind(Json(j)),
                Value::Bytes(b) => query.bind(b.as_slice()),
            };
        }
    }
    query.execute(conn).await?;
    Ok(())
}

/// Moves the sequence behind `table.column` past the highest id the table holds, so the
/// next row inserted without an id gets a new one.
pub(crate) async fn continue_identity(
    conn: &mut sqlx::PgConnection,
    table: &str,
    column: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({}), 0) + 1, false) \
         FROM {}",
        quote(column),
        quote(table)
    );
    sqlx::query_scalar::<_, Option<i64>>(&sql)
        .bind(quote(table))
        .bind(column)
        .fetch_one(conn)
        .await?;
    Ok(())
}
