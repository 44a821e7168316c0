//! The SQLite schema's versions. `PRAGMA user_version` is the number of
//! migrations a database has had; opening it applies the rest, in order, in
//! one transaction with the new number, so a failed migration leaves the
//! file as it was. A database a newer release migrated further is refused
//! (`SchemaError::Newer`) and left untouched.

use rusqlite::{Transaction, TransactionBehavior};

/// One step: the schema at version `i` (its index) to `i + 1`.
pub(super) type Migration = fn(&Transaction) -> rusqlite::Result<()>;

/// Every migration, oldest first. Only ever append: a released one never changes.
pub(super) const MIGRATIONS: &[Migration] = &[first_release];

/// Why a database could not be brought to this release's schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "its schema is version {found}, from a newer release than this one (which knows versions up to {known}); \
         it was left untouched: run that release or a newer one, or restore the backup taken before the upgrade"
    )]
    Newer { found: i64, known: i64 },
    #[error("its schema could not be migrated from version {from} (nothing was changed): {source}")]
    Failed {
        from: i64,
        #[source]
        source: rusqlite::Error,
    },
}

/// The schema this release knows.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings `db` to the last of `migrations`; the version it had.
pub(super) fn migrate(db: &mut rusqlite::Connection, migrations: &[Migration]) -> Result<i64, SchemaError> {
    let known = migrations.len() as i64;
    let failed = |from| move |source| SchemaError::Failed { from, source };
    // Immediate: a second process opening the same file waits, then sees the new version.
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed(-1))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(failed(-1))?;
    if found > known {
        return Err(SchemaError::Newer { found, known });
    }
    for step in &migrations[found.max(0) as usize..] {
        step(&tx).map_err(failed(found))?;
    }
    if found != known {
        tx.pragma_update(None, "user_version", known).map_err(failed(found))?;
    }
    tx.commit().map_err(failed(found))?;
    Ok(found)
}

/// Version 1, the shape 0.1.0 (the last release without versions) made.
/// A file of that release or an earlier one says version 0 and holds some
/// of these tables already, so each is made only if it is missing; a file
/// from before the message claims gets them, filled from its deliveries.
fn first_release(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(super::SCHEMA)?;
    tx.execute_batch(super::organizations::SCHEMA)?;
    super::webhooks::first_release(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(db: &rusqlite::Connection) -> i64 {
        db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
    }

    fn tables(db: &rusqlite::Connection) -> Vec<String> {
        let mut s = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't%' ORDER BY name")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    const STEPS: &[Migration] = &[
        |tx| tx.execute_batch("CREATE TABLE t1 (a)"),
        |tx| tx.execute_batch("CREATE TABLE t2 (b); INSERT INTO t2 SELECT a FROM t1"),
    ];

    #[test]
    fn migrations_run_in_order_once_and_record_the_version() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut db, &STEPS[..1]).unwrap(), 0);
        db.execute("INSERT INTO t1 VALUES (7)", []).unwrap();
        assert_eq!(version(&db), 1);
        // A later release: only the new step runs.
        assert_eq!(migrate(&mut db, STEPS).unwrap(), 1);
        assert_eq!(version(&db), 2);
        let b: i64 = db.query_row("SELECT b FROM t2", [], |r| r.get(0)).unwrap();
        assert_eq!(b, 7);
        assert_eq!(migrate(&mut db, STEPS).unwrap(), 2, "nothing left to run");
    }

    #[test]
    fn a_failed_migration_leaves_the_database_as_it_was() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        let steps: &[Migration] = &[STEPS[0], |tx| tx.execute_batch("CREATE TABLE t3 (c); NOT SQL")];
        match migrate(&mut db, steps) {
            Err(SchemaError::Failed { from: 0, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(version(&db), 0);
        assert!(tables(&db).is_empty(), "{:?}", tables(&db));
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t9 (z); PRAGMA user_version = 3")
            .unwrap();
        let e = migrate(&mut db, STEPS).unwrap_err();
        assert!(matches!(e, SchemaError::Newer { found: 3, known: 2 }), "{e:?}");
        assert!(e.to_string().contains("newer release"), "{e}");
        assert_eq!(version(&db), 3);
        assert_eq!(tables(&db), ["t9"]);
    }
}
