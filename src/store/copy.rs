//! Moving an install between databases (`herald db copy`): every row of every table that
//! herald's migrations create, from one [`Store`] into another that holds nothing yet,
//! SQLite to PostgreSQL or back.
//!
//! # How a copy runs
//!
//! 1. Both stores are open, so both schemas are up to date (opening migrates). Each
//!    backend reads its own catalog: the tables, their columns and value kinds, their
//!    primary keys and foreign keys. The two lists of tables and columns must agree.
//! 2. The source is read inside one read transaction (a snapshot on either backend), so
//!    the copy is consistent even if something writes to the source meanwhile.
//! 3. The target is written inside ONE write transaction: on PostgreSQL every table is
//!    locked against other writers first. Every table must be empty, or the copy stops
//!    before writing anything. Tables are copied parents first (by their foreign keys),
//!    rows in primary-key order, in multi-row `INSERT`s of up to a thousand rows.
//! 4. Before committing, the rows of every table are counted on the target and compared
//!    with the source's counts; identity columns are moved past the highest copied id, so
//!    the next subscriber or event gets a fresh id. Then the transaction commits.
//!
//! Any failure before the commit rolls the whole copy back: the target is left as it was
//! (migrated, and empty).
//!
//! Values travel as [`Value`]: each backend reads what it stores (SQLite's dynamic types,
//! PostgreSQL's column types) and writes what the target column holds ([`Kind`]): a JSON
//! document is text on SQLite and `jsonb` on PostgreSQL, a flag is an integer on SQLite and
//! a `boolean` on PostgreSQL.
//!
//! Table and column names are formatted into the copy's statements: they come from the
//! databases' own catalogs (written by herald's migrations), never from input, and are
//! quoted as identifiers. Values are always bound parameters.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::{Engine, Store, StoreError};

/// Rows per multi-row `INSERT`, at most.
const BATCH_ROWS: usize = 1_000;

/// Bound values per statement, at most: under SQLite's limit of 32,766 and PostgreSQL's of
/// 65,535.
const BATCH_VALUES: usize = 30_000;

/// Everything that can stop a copy. None of them leaves rows behind on the target.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target database is not empty ({table} holds {rows} rows); db copy writes only \
         into an empty database, and wrote nothing"
    )]
    NotEmpty { table: String, rows: i64 },
    #[error("the two databases do not have the same tables ({0}); is each one herald's database?")]
    SchemaMismatch(String),
    #[error("{table}.{column} holds a value the target cannot take: {reason}")]
    BadValue {
        table: String,
        column: String,
        reason: String,
    },
    #[error(
        "after copying, {table} holds {target} rows on the target but {source_rows} on the \
         source; the copy was rolled back"
    )]
    CountMismatch {
        table: String,
        source_rows: i64,
        target: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(StoreError::Sql(e))
    }
}

/// What a column holds, as the copy converts values for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Real,
    Text,
    Bytes,
    Bool,
    Json,
}

/// One value on its way from the source to the target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    Json(serde_json::Value),
}

impl Value {
    /// This value as the target column of `kind` takes it.
    pub(crate) fn convert(self, kind: Kind) -> Result<Value, String> {
        use Value as V;
        Ok(match (kind, self) {
            (_, V::Null) => V::Null,
            (Kind::Int, V::Int(n)) => V::Int(n),
            (Kind::Int, V::Bool(b)) => V::Int(i64::from(b)),
            (Kind::Bool, V::Bool(b)) => V::Bool(b),
            (Kind::Bool, V::Int(n)) => V::Bool(n != 0),
            (Kind::Real, V::Real(x)) => V::Real(x),
            (Kind::Real, V::Int(n)) => V::Real(n as f64),
            (Kind::Text, V::Text(s)) => V::Text(s),
            (Kind::Text, V::Json(j)) => V::Text(j.to_string()),
            (Kind::Json, V::Json(j)) => V::Json(j),
            (Kind::Json, V::Text(s)) => {
                V::Json(serde_json::from_str(&s).map_err(|e| format!("not JSON: {e}"))?)
            }
            (Kind::Bytes, V::Bytes(b)) => V::Bytes(b),
            (kind, value) => return Err(format!("{} for a {kind:?} column", value.describe())),
        })
    }

    fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Bool(_) => "a boolean",
            Value::Json(_) => "JSON",
        }
    }
}

/// One column of a table, as the backend's catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// An identity (or serial) column, whose sequence must continue after the copied ids.
    pub(crate) identity: bool,
}

/// One table, as the backend's catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) columns: Vec<Column>,
    /// The primary key's columns, in key order (the order rows are read in).
    pub(crate) primary_key: Vec<String>,
    /// The tables this one's foreign keys refer to.
    pub(crate) parents: BTreeSet<String>,
}

/// What a copy reports as it goes, for a progress bar or progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The source has been counted: `rows` rows in `tables` tables to copy.
    Counted { tables: usize, rows: u64 },
    /// Copying `table`, which holds `rows` rows, starts.
    Table { table: String, rows: u64 },
    /// `rows` more rows were written.
    Rows(u64),
    /// Every row is written; the counts are being checked before the commit.
    Checking,
}

/// What a finished copy did: each table with the rows it now holds on both sides, parents
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

impl CopyReport {
    /// Rows copied in all.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Copies every row of `from` into `to`, which must be empty, in one transaction on `to`,
/// and checks the counts per table before committing. See the module documentation.
#[tracing::instrument(skip_all)]
pub async fn copy(
    from: &Store,
    to: &Store,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<CopyReport, CopyError> {
    let source_tables = catalog(from).await?;
    let target_tables = catalog(to).await?;
    let tables = plan(&source_tables, &target_tables)?;

    let mut reader = Reader::begin(from).await?;
    let mut writer = Writer::begin(to, &tables).await?;
    for table in &tables {
        let rows = writer.count(&table.name).await?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                table: table.name.clone(),
                rows,
            });
        }
    }

    let mut counts = Vec::with_capacity(tables.len());
    for table in &tables {
        counts.push(reader.count(&table.name).await?);
    }
    let total: i64 = counts.iter().sum();
    progress(Progress::Counted {
        tables: tables.len(),
        rows: u64::try_from(total).unwrap_or(0),
    });

    for (table, &rows) in tables.iter().zip(&counts) {
        progress(Progress::Table {
            table: table.name.clone(),
            rows: u64::try_from(rows).unwrap_or(0),
        });
        copy_table(&mut reader, &mut writer, table, progress).await?;
        writer.continue_identities(table).await?;
    }

    progress(Progress::Checking);
    let mut report = Vec::with_capacity(tables.len());
    for (table, &source_rows) in tables.iter().zip(&counts) {
        let target = writer.count(&table.name).await?;
        if target != source_rows {
            return Err(CopyError::CountMismatch {
                table: table.name.clone(),
                source_rows,
                target,
            });
        }
        report.push((table.name.clone(), u64::try_from(target).unwrap_or(0)));
    }
    writer.commit().await?;
    reader.finish().await?;
    Ok(CopyReport { tables: report })
}

/// The catalog of `store`'s tables.
async fn catalog(store: &Store) -> Result<Vec<Table>, CopyError> {
    Ok(match &store.engine {
        Engine::Sqlite(db) => db.copy_catalog().await?,
        Engine::Postgres(db) => db.copy_catalog().await?,
    })
}

/// The target's tables, parents first, after checking that the source has the same tables
/// and columns.
fn plan(source: &[Table], target: &[Table]) -> Result<Vec<Table>, CopyError> {
    let source_by_name: BTreeMap<&str, &Table> =
        source.iter().map(|t| (t.name.as_str(), t)).collect();
    let target_by_name: BTreeMap<&str, &Table> =
        target.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut differences = Vec::new();
    for name in source_by_name.keys() {
        if !target_by_name.contains_key(name) {
            differences.push(format!("{name} only on the source"));
        }
    }
    for (name, table) in &target_by_name {
        let Some(theirs) = source_by_name.get(name) else {
            differences.push(format!("{name} only on the target"));
            continue;
        };
        let ours: BTreeSet<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let theirs: BTreeSet<&str> = theirs.columns.iter().map(|c| c.name.as_str()).collect();
        for column in ours.symmetric_difference(&theirs) {
            differences.push(format!("{name}.{column} only on one side"));
        }
    }
    if !differences.is_empty() {
        return Err(CopyError::SchemaMismatch(differences.join(", ")));
    }
    Ok(parents_first(target))
}

/// `tables` ordered so that every table comes after the tables its foreign keys refer to
/// (by name among equals; a cycle, which herald's schema has none of, keeps name order).
fn parents_first(tables: &[Table]) -> Vec<Table> {
    let mut left: BTreeMap<&str, &Table> = tables.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut ordered = Vec::with_capacity(tables.len());
    while !left.is_empty() {
        let ready: Vec<&str> = left
            .iter()
            .filter(|(name, t)| {
                t.parents
                    .iter()
                    .all(|p| p == *name || !left.contains_key(p.as_str()))
            })
            .map(|(name, _)| *name)
            .collect();
        let take = if ready.is_empty() {
            vec![*left.keys().next().expect("left is not empty")]
        } else {
            ready
        };
        for name in take {
            if let Some(table) = left.remove(name) {
                ordered.push(table.clone());
            }
        }
    }
    ordered
}

/// Copies one table's rows in batches.
async fn copy_table(
    reader: &mut Reader,
    writer: &mut Writer,
    table: &Table,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), CopyError> {
    let batch_rows = (BATCH_VALUES / table.columns.len().max(1)).clamp(1, BATCH_ROWS);
    let select = select_sql(table);
    let insert = insert_sql(writer.placeholders(), table, batch_rows);
    let kinds: Vec<Kind> = table.columns.iter().map(|c| c.kind).collect();
    let mut rows = reader.rows(&select);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_rows);
    while let Some(row) = rows.next().await {
        let row = row?;
        let mut converted = Vec::with_capacity(row.len());
        for (value, column) in row.into_iter().zip(&table.columns) {
            converted.push(
                value
                    .convert(column.kind)
                    .map_err(|reason| CopyError::BadValue {
                        table: table.name.clone(),
                        column: column.name.clone(),
                        reason,
                    })?,
            );
        }
        batch.push(converted);
        if batch.len() == batch_rows {
            writer.insert(&insert, &kinds, &batch).await?;
            progress(Progress::Rows(batch.len() as u64));
            batch.clear();
        }
    }
    drop(rows);
    if !batch.is_empty() {
        let last = insert_sql(writer.placeholders(), table, batch.len());
        writer.insert(&last, &kinds, &batch).await?;
        progress(Progress::Rows(batch.len() as u64));
    }
    Ok(())
}

/// `name` quoted as an SQL identifier (both dialects double the `"`).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every column of `table`, in the catalog's order, in primary-key order.
fn select_sql(table: &Table) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
    if !table.primary_key.is_empty() {
        let key: Vec<String> = table.primary_key.iter().map(|c| quote(c)).collect();
        sql.push_str(&format!(" ORDER BY {}", key.join(", ")));
    }
    sql
}

/// How a backend numbers its bound values.
#[derive(Debug, Clone, Copy)]
enum Placeholders {
    /// `?` each time (SQLite reads them in order).
    Anonymous,
    /// `$1`, `$2`, ...
    Numbered,
}

/// A multi-row `INSERT` of `rows` rows into `table`.
fn insert_sql(placeholders: Placeholders, table: &Table, rows: usize) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let width = table.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&table.name),
        columns.join(", ")
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..width {
            if col > 0 {
                sql.push_str(", ");
            }
            match placeholders {
                Placeholders::Anonymous => sql.push('?'),
                Placeholders::Numbered => sql.push_str(&format!("${}", row * width + col + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

/// The source's read transaction.
enum Reader {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Reader {
    async fn begin(store: &Store) -> Result<Self, CopyError> {
        Ok(match &store.engine {
            Engine::Sqlite(db) => Reader::Sqlite(db.begin_copy_read().await?),
            Engine::Postgres(db) => Reader::Postgres(db.begin_copy_read().await?),
        })
    }

    async fn count(&mut self, table: &str) -> Result<i64, CopyError> {
        Ok(match self {
            Reader::Sqlite(tx) => super::sqlite::copy::count(tx, table).await?,
            Reader::Postgres(tx) => super::postgres::copy::count(tx, table).await?,
        })
    }

    fn rows<'a>(
        &'a mut self,
        select: &'a str,
    ) -> futures::stream::BoxStream<'a, Result<Vec<Value>, StoreError>> {
        match self {
            Reader::Sqlite(tx) => super::sqlite::copy::rows(tx, select),
            Reader::Postgres(tx) => super::postgres::copy::rows(tx, select),
        }
    }

    async fn finish(self) -> Result<(), CopyError> {
        match self {
            Reader::Sqlite(tx) => tx.rollback().await?,
            Reader::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// The target's write transaction.
enum Writer {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Writer {
    /// Opens the write transaction; on PostgreSQL it first locks `tables` against other
    /// writers (SQLite's write transaction already excludes them).
    async fn begin(store: &Store, tables: &[Table]) -> Result<Self, CopyError> {
        Ok(match &store.engine {
            Engine::Sqlite(db) => Writer::Sqlite(db.begin_copy_write().await?),
            Engine::Postgres(db) => {
                let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                Writer::Postgres(db.begin_copy_write(&names).await?)
            }
        })
    }

    fn placeholders(&self) -> Placeholders {
        match self {
            Writer::Sqlite(_) => Placeholders::Anonymous,
            Writer::Postgres(_) => Placeholders::Numbered,
        }
    }

    async fn count(&mut self, table: &str) -> Result<i64, CopyError> {
        Ok(match self {
            Writer::Sqlite(tx) => super::sqlite::copy::count(tx, table).await?,
            Writer::Postgres(tx) => super::postgres::copy::count(tx, table).await?,
        })
    }

    /// Runs the multi-row `sql` with `rows`, whose values are already converted to the
    /// columns' `kinds` (a null is bound as a null of its column's kind).
    async fn insert(
        &mut self,
        sql: &str,
        kinds: &[Kind],
        rows: &[Vec<Value>],
    ) -> Result<(), CopyError> {
        match self {
            Writer::Sqlite(tx) => super::sqlite::copy::insert(tx, sql, kinds, rows).await?,
            Writer::Postgres(tx) => super::postgres::copy::insert(tx, sql, kinds, rows).await?,
        }
        Ok(())
    }

    async fn continue_identities(&mut self, table: &Table) -> Result<(), CopyError> {
        match self {
            // A rowid table's next id is always past its highest one.
            Writer::Sqlite(_) => {}
            Writer::Postgres(tx) => {
                for column in table.columns.iter().filter(|c| c.identity) {
                    super::postgres::copy::continue_identity(tx, &table.name, &column.name).await?;
                }
            }
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), CopyError> {
        match self {
            Writer::Sqlite(tx) => tx.commit().await?,
            Writer::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, parents: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: vec![Column {
                name: "id".into(),
                kind: Kind::Int,
                identity: true,
            }],
            primary_key: vec!["id".into()],
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn parents_are_copied_before_the_tables_that_refer_to_them() {
        let tables = [
            table("deliveries", &["issues", "subscribers"]),
            table("events", &["issues", "subscribers"]),
            table("subscribers", &[]),
            table("issues", &[]),
            table("notices", &["subscribers", "notices"]),
        ];
        let order: Vec<String> = parents_first(&tables).into_iter().map(|t| t.name).collect();
        assert_eq!(
            order,
            ["issues", "subscribers", "deliveries", "events", "notices"]
        );
    }

    #[test]
    fn a_table_on_one_side_only_is_named() {
        let source = [table("subscribers", &[]), table("legacy", &[])];
        let target = [table("subscribers", &[]), table("nodes", &[])];
        let e = plan(&source, &target).unwrap_err().to_string();
        assert!(e.contains("legacy only on the source"), "{e}");
        assert!(e.contains("nodes only on the target"), "{e}");
    }

    #[test]
    fn values_become_what_the_target_column_holds() {
        assert_eq!(Value::Int(1).convert(Kind::Bool), Ok(Value::Bool(true)));
        assert_eq!(Value::Bool(true).convert(Kind::Int), Ok(Value::Int(1)));
        assert_eq!(
            Value::Text("{\"a\":1}".into()).convert(Kind::Json),
            Ok(Value::Json(serde_json::json!({"a": 1})))
        );
        assert_eq!(
            Value::Json(serde_json::json!({"a": 1})).convert(Kind::Text),
            Ok(Value::Text("{\"a\":1}".into()))
        );
        assert!(Value::Text("not json".into()).convert(Kind::Json).is_err());
        assert!(Value::Text("x".into()).convert(Kind::Int).is_err());
        assert_eq!(Value::Null.convert(Kind::Json), Ok(Value::Null));
    }

    #[test]
    fn inserts_number_their_values_on_postgres_only() {
        let t = Table {
            name: "t".into(),
            columns: vec![
                Column {
                    name: "a".into(),
                    kind: Kind::Int,
                    identity: false,
                },
                Column {
                    name: "b".into(),
                    kind: Kind::Text,
                    identity: false,
                },
            ],
            primary_key: vec![],
            parents: BTreeSet::new(),
        };
        assert_eq!(
            insert_sql(Placeholders::Numbered, &t, 2),
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            insert_sql(Placeholders::Anonymous, &t, 1),
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES (?, ?)"
        );
    }
}
