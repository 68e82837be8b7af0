//! The constraint kinds beyond a plain column list, on every backend: `case_insensitive` (ASCII
//! letters fold, nothing else does, on all three) and `nulls_not_distinct` (a NULL collides with a
//! NULL). Each through the DDL and the catalog, every typed operation, both bulk modes, violation
//! mapping and `validate_unique`, and a race of 64 tasks on one key.

use std::collections::HashSet;

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Dialect, Error, Model, Outcome, Schema, SqlType};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "ci_users")]
#[unique_together(tenant, handle, case_insensitive(handle))]
struct User {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(case_insensitive)]
    #[model(max_length = 100)]
    email: String,
    tenant: i64,
    #[model(max_length = 50)]
    handle: String,
    score: i64,
}

fn user(email: &str, tenant: i64, handle: &str, score: i64) -> User {
    User {
        id: 0,
        email: email.into(),
        tenant,
        handle: handle.into(),
        score,
    }
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "nnd_slots")]
#[unique_together(room, day, nulls_not_distinct)]
struct Slot {
    #[model(primary_key, auto_increment)]
    id: i64,
    room: i64,
    day: Option<i64>,
    #[unique(nulls_not_distinct, case_insensitive)]
    #[model(max_length = 20)]
    code: Option<String>,
    note: String,
}

fn slot(room: i64, day: Option<i64>, code: Option<&str>, note: &str) -> Slot {
    Slot {
        id: 0,
        room,
        day,
        code: code.map(Into::into),
        note: note.into(),
    }
}

async fn create<DB: TestBackend>(db: &TestDb<DB>) {
    Schema::new()
        .model::<User>()
        .model::<Slot>()
        .create(&db.pool)
        .await
        .unwrap();
}

/// The first column of every row of a catalog query, as text.
async fn texts<DB: TestBackend>(db: &TestDb<DB>, sql: &str, table: &str) -> Vec<String> {
    let mut conn = db.pool.acquire().await.unwrap();
    let rows = DB::fetch_all(
        &mut conn,
        sql.into(),
        model_runtime::__private::Values(vec![table.into()]),
    )
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| String::decode(DB::row_ref(row), 0).unwrap().unwrap())
        .collect()
}

/// Each database's own catalog holds the constraints under their names, over what they compare.
async fn the_catalog_holds_each_kind<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    let shown = format!("{}\n{}", User::META, Slot::META);
    for line in [
        "unique \"ci_users_email_key\" (email) case-insensitive (email)",
        "unique \"ci_users_tenant_handle_key\" (tenant, handle) case-insensitive (handle)",
        "unique \"nnd_slots_code_key\" (code) case-insensitive (code) nulls not distinct",
        "unique \"nnd_slots_room_day_key\" (room, day) nulls not distinct",
    ] {
        assert!(shown.contains(line), "{shown}");
    }
    let (users, slots) = match DB::DIALECT {
        Dialect::Postgres => {
            let sql = "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname <> tablename || '_pkey' ORDER BY indexname";
            (
                texts(&db, sql, "ci_users").await,
                texts(&db, sql, "nnd_slots").await,
            )
        }
        Dialect::Sqlite => {
            let sql = "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name";
            (
                texts(&db, sql, "ci_users").await,
                texts(&db, sql, "nnd_slots").await,
            )
        }
        Dialect::MySql => {
            let sql = "SELECT CAST(CONCAT(INDEX_NAME, ': ', GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX)) AS CHAR) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME ORDER BY INDEX_NAME";
            (
                texts(&db, sql, "ci_users").await,
                texts(&db, sql, "nnd_slots").await,
            )
        }
    };
    let expected: [(&str, &[&str]); 4] = match DB::DIALECT {
        Dialect::Postgres => [
            (
                "ci_users_email_key",
                &["UNIQUE INDEX", "lower(((email)::text COLLATE \"C\"))"],
            ),
            (
                "ci_users_tenant_handle_key",
                &[
                    "UNIQUE INDEX",
                    "tenant",
                    "lower(((handle)::text COLLATE \"C\"))",
                ],
            ),
            (
                "nnd_slots_code_key",
                &[
                    "UNIQUE INDEX",
                    "lower(((code)::text COLLATE \"C\"))",
                    "NULLS NOT DISTINCT",
                ],
            ),
            (
                "nnd_slots_room_day_key",
                &["UNIQUE INDEX", "(room, day) NULLS NOT DISTINCT"],
            ),
        ],
        Dialect::Sqlite => [
            ("ci_users_email_key", &["UNIQUE INDEX", "lower(\"email\")"]),
            (
                "ci_users_tenant_handle_key",
                &["UNIQUE INDEX", "\"tenant\", (lower(\"handle\"))"],
            ),
            (
                "nnd_slots_code_key",
                &[
                    "UNIQUE INDEX",
                    "ifnull(lower(\"code\"), 0), (\"code\" IS NULL)",
                ],
            ),
            (
                "nnd_slots_room_day_key",
                &[
                    "UNIQUE INDEX",
                    "\"room\", ifnull(\"day\", 0), (\"day\" IS NULL)",
                ],
            ),
        ],
        Dialect::MySql => [
            ("ci_users_email_key", &["email__ci"]),
            ("ci_users_tenant_handle_key", &["tenant,handle__ci"]),
            ("nnd_slots_code_key", &["code__ci__nn,code__null"]),
            ("nnd_slots_room_day_key", &["room,day__nn,day__null"]),
        ],
    };
    let found: Vec<&String> = users.iter().chain(&slots).collect();
    assert_eq!(found.len(), 4, "{}: {found:#?}", DB::DIALECT);
    for ((name, parts), line) in expected.iter().zip(&found) {
        assert!(
            line.starts_with(&format!("{name}: ")),
            "{}: {line}",
            DB::DIALECT
        );
        for part in *parts {
            assert!(line.contains(part), "{}: {line} lacks {part}", DB::DIALECT);
        }
    }
}

/// ASCII letters fold; nothing else does (accents, `ß`, trailing spaces, other scripts), on every
/// backend, through every single-row operation.
async fn case_insensitive_keys_fold_ascii_only<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    let (alice, outcome) =
        User::get_or_create_by_email(&db.pool, &user("Alice@Example.COM", 1, "a", 1))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Created);
    for variant in [
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        "aLiCe@eXaMpLe.cOm",
    ] {
        let found = User::by_email(variant).get(&db.pool).await.unwrap();
        assert_eq!(
            found.as_ref().map(|u| u.id),
            Some(alice.id),
            "{}: {variant}",
            DB::DIALECT
        );
        assert!(User::by_email(variant).exists(&db.pool).await.unwrap());
        let (row, outcome) = User::get_or_create_by_email(&db.pool, &user(variant, 2, "b", 2))
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.id, row.email.as_str()),
            (Outcome::Found, alice.id, "Alice@Example.COM")
        );
    }
    // Not folded: another key each, on every backend alike.
    for other in [
        "alice@example.com ",
        "Älice@Example.COM",
        "älice@example.com",
        "ALİCE@EXAMPLE.COM",
        "alice@exampl\u{0435}.com",
    ] {
        assert_eq!(
            User::by_email(other).get(&db.pool).await.unwrap(),
            None,
            "{}: {other:?}",
            DB::DIALECT
        );
        let (row, outcome) = User::get_or_create_by_email(&db.pool, &user(other, 3, other, 3))
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.email.as_str()),
            (Outcome::Created, other),
            "{}",
            DB::DIALECT
        );
    }
    // "Ä" and "ä" are distinct keys too: non-ASCII letters never fold.
    let (upper, _) = User::get_or_create_by_email(&db.pool, &user("Ä@x", 4, "u", 0))
        .await
        .unwrap();
    let (lower, outcome) = User::get_or_create_by_email(&db.pool, &user("ä@x", 4, "l", 0))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created, "{}", DB::DIALECT);
    assert_ne!(upper.id, lower.id);

    // update_or_create through a case variant updates the stored row and keeps its spelling.
    let (row, outcome) = User::update_or_create_by_email(
        &db.pool,
        &user("ALICE@example.com", 9, "zz", 42),
        &[UserField::Score],
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome, row.id, row.score, row.email.as_str()),
        (Outcome::Updated, alice.id, 42, "Alice@Example.COM")
    );

    // The composite key folds only the column it lists: `handle`, not the tenant.
    let (t1, _) = User::get_or_create_by_tenant_and_handle(&db.pool, &user("t1@x", 7, "Bob", 0))
        .await
        .unwrap();
    let found = User::by_tenant_and_handle(7, "BOB")
        .get(&db.pool)
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id), Some(t1.id));
    assert_eq!(
        User::by_tenant_and_handle(8, "bob")
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );

    // A plain insert of a case variant is the constraint's duplicate-key error, named.
    let error = user("ALICE@EXAMPLE.com", 5, "c", 0)
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(
        violation.is::<UserByEmail>(),
        "{}: {violation}",
        DB::DIALECT
    );
    assert_eq!(violation.constraint(), "ci_users_email_key");
    assert_eq!(violation.columns(), ["email"]);

    // validate_unique sees it before any write, as the database compares.
    let found = user("alice@EXAMPLE.com", 5, "BoB", 0)
        .validate_unique_new(&db.pool)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{}: {found:?}", DB::DIALECT);
    assert!(found[0].is::<UserByEmail>());
    let found = user("new@x", 7, "bOb", 0)
        .validate_unique_new(&db.pool)
        .await
        .unwrap();
    assert!(
        found.len() == 1 && found[0].is::<UserByTenantAndHandle>(),
        "{}: {found:?}",
        DB::DIALECT
    );
    assert!(
        user("new@x", 7, "bób", 0)
            .validate_unique_new(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Bulk skip and update modes compare keys as the database does: the in-input dedupe folds too.
async fn case_insensitive_bulk<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    User::get_or_create_by_email(&db.pool, &user("Stored@X", 1, "s", 0))
        .await
        .unwrap();
    let rows = vec![
        user("stored@x", 1, "a", 1), // stored, as folded
        user("new@x", 1, "b", 2),    // new
        user("NEW@X", 1, "c", 3),    // repeat of the one before
        user("nëw@x", 1, "d", 4),    // another key: ë does not fold
        user("NËW@X", 1, "e", 5),    // another key again: Ë is not ë
    ];
    let report = BulkInsert::<User>::new()
        .skip_conflicts::<UserByEmail>()
        .run(&db.pool, rows.clone())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!(
        (
            report.inserted,
            report.skipped_existing,
            report.skipped_in_input
        ),
        (3, 1, 1),
        "{}",
        DB::DIALECT
    );
    assert_eq!(DB::count(&db.pool, "ci_users").await, 4);

    // Update mode: the last of the repeats wins, the stored row keeps its spelling.
    let report = BulkInsert::<User>::new()
        .update_conflicts::<UserByEmail>(&[UserField::Score])
        .run(
            &db.pool,
            vec![
                user("STORED@x", 1, "z", 70),
                user("stored@X", 1, "y", 71),
                user("fresh@x", 1, "f", 9),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!((report.inserted, report.updated), (1, 1), "{}", DB::DIALECT);
    let stored = User::by_email("stored@x")
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.email.as_str(), stored.score), ("Stored@X", 71));

    // A plain bulk insert of a case variant fails on the constraint, named, at the right row.
    let error = BulkInsert::<User>::new()
        .run(
            &db.pool,
            vec![user("other@x", 1, "o", 0), user("FRESH@X", 1, "g", 0)],
        )
        .await
        .unwrap_err();
    let Error::Bulk { source, .. } = &error else {
        panic!("{error:?}")
    };
    let violation = source
        .unique_violation()
        .unwrap_or_else(|| panic!("{source:?}"));
    assert!(
        violation.is::<UserByEmail>(),
        "{}: {violation}",
        DB::DIALECT
    );
}

/// Under `nulls_not_distinct` a key with NULLs identifies a row: lookups with `None` find it,
/// get_or_create finds instead of creating, a second NULL row is a duplicate, and bulk dedupes it.
async fn nulls_not_distinct_keys<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    let (first, outcome) = Slot::get_or_create_by_room_and_day(&db.pool, &slot(1, None, None, "a"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let (again, outcome) =
        Slot::get_or_create_by_room_and_day(&db.pool, &slot(1, None, Some("x"), "b"))
            .await
            .unwrap();
    assert_eq!(
        (outcome, again.id),
        (Outcome::Found, first.id),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        Slot::by_room_and_day(1, None)
            .get(&db.pool)
            .await
            .unwrap()
            .map(|s| s.id),
        Some(first.id)
    );
    assert!(
        Slot::by_room_and_day(1, None)
            .exists(&db.pool)
            .await
            .unwrap()
    );
    // A real 0 is not the NULL (the emulations stand for NULL with a 0 and a flag).
    let (zero, outcome) =
        Slot::get_or_create_by_room_and_day(&db.pool, &slot(1, Some(0), Some("z"), "c"))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Created, "{}", DB::DIALECT);
    assert_ne!(zero.id, first.id);

    // The code key: NULL collides with NULL, and case-folds.
    let error = slot(2, Some(1), None, "d")
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{}: {error:?}", DB::DIALECT));
    assert!(violation.is::<SlotByCode>(), "{}: {violation}", DB::DIALECT);
    assert_eq!(violation.constraint(), "nnd_slots_code_key");
    let (found, outcome) = Slot::get_or_create_by_code(&db.pool, &slot(3, Some(3), Some("Z"), "e"))
        .await
        .unwrap();
    assert_eq!(
        (outcome, found.id),
        (Outcome::Found, zero.id),
        "{}",
        DB::DIALECT
    );
    // An empty string is not NULL.
    let (empty, outcome) = Slot::get_or_create_by_code(&db.pool, &slot(4, Some(4), Some(""), "f"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created, "{}", DB::DIALECT);
    assert_ne!(empty.id, first.id);

    // update_or_create with a NULL key updates the NULL row.
    let (row, outcome) = Slot::update_or_create_by_room_and_day(
        &db.pool,
        &slot(1, None, Some("q"), "updated"),
        &[SlotField::Note],
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome, row.id, row.note.as_str()),
        (Outcome::Updated, first.id, "updated"),
        "{}",
        DB::DIALECT
    );

    // validate_unique_new reports the NULL key as taken.
    let found = slot(1, None, Some("new"), "g")
        .validate_unique_new(&db.pool)
        .await
        .unwrap();
    assert!(
        found.len() == 1 && found[0].is::<SlotByRoomAndDay>(),
        "{}: {found:?}",
        DB::DIALECT
    );

    // Bulk: NULL keys are keys, in the input and against the stored rows.
    let report = BulkInsert::<Slot>::new()
        .skip_conflicts::<SlotByRoomAndDay>()
        .run(
            &db.pool,
            vec![
                slot(1, None, Some("b1"), "stored"),
                slot(9, None, Some("b2"), "new"),
                slot(9, None, Some("b3"), "repeat"),
                slot(9, Some(0), Some("b4"), "zero"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!(
        (
            report.inserted,
            report.skipped_existing,
            report.skipped_in_input
        ),
        (2, 1, 1),
        "{}",
        DB::DIALECT
    );
    let report = BulkInsert::<Slot>::new()
        .update_conflicts::<SlotByRoomAndDay>(&[SlotField::Note])
        .run(
            &db.pool,
            vec![
                slot(9, None, Some("c1"), "bulk-updated"),
                slot(10, None, Some("c2"), "new"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!((report.inserted, report.updated), (1, 1), "{}", DB::DIALECT);
    let row = Slot::by_room_and_day(9, None)
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.note, "bulk-updated");
}

/// 64 tasks race on the same key in its case variants, and on the same NULL key: one row each.
async fn races_leave_one_row_per_key<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    let mut tasks = Vec::new();
    for task in 0..64i64 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let email = if task % 2 == 0 { "Race@X" } else { "rAcE@x" };
            let (u, _) = User::get_or_create_by_email(&pool, &user(email, task, "h", task))
                .await
                .unwrap();
            let (s, _) = Slot::get_or_create_by_room_and_day(
                &pool,
                &slot(5, None, Some(&format!("r{task}")), "race"),
            )
            .await
            .unwrap();
            // And update_or_create on the same keys, each writing its own value.
            let email = if task % 3 == 0 { "RACE@x" } else { "race@X" };
            let (v, _) = User::update_or_create_by_email(
                &pool,
                &user(email, task, "h", task),
                &[UserField::Score],
            )
            .await
            .unwrap();
            let (t, _) = Slot::update_or_create_by_room_and_day(
                &pool,
                &slot(5, None, Some(&format!("u{task}")), &format!("n{task}")),
                &[SlotField::Note],
            )
            .await
            .unwrap();
            assert_eq!((v.id, t.id), (u.id, s.id));
            (u.id, s.id)
        }));
    }
    let mut users = HashSet::new();
    let mut slots = HashSet::new();
    for task in tasks {
        let (u, s) = task.await.unwrap();
        users.insert(u);
        slots.insert(s);
    }
    assert_eq!((users.len(), slots.len()), (1, 1), "{}", DB::DIALECT);
    assert_eq!(DB::count(&db.pool, "ci_users").await, 1);
    assert_eq!(DB::count(&db.pool, "nnd_slots").await, 1);
    // The stored values are ones some call wrote.
    let stored = User::by_email("race@x")
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert!((0..64).contains(&stored.score));
    let stored = Slot::by_room_and_day(5, None)
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.note.starts_with('n'), "{}: {stored:?}", DB::DIALECT);
}

/// A schema made by `Schema::create` diffs clean against its models: the catalog readers see each
/// kind as the model declares it.
async fn a_created_schema_diffs_clean<DB: TestBackend>(db: TestDb<DB>) {
    create(&db).await;
    let schema = Schema::new().model::<User>().model::<Slot>();
    let plan = schema.diff(&db.pool).await.unwrap();
    assert!(plan.is_empty(), "{}: {plan:?}", DB::DIALECT);
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "p_members")]
#[unique_together(team, nick, case_insensitive(nick), condition(active == true), name = "p_members_live_nick")]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    team: i64,
    #[model(max_length = 40)]
    nick: String,
    active: bool,
    #[unique(condition(deleted_at == None))]
    #[model(max_length = 40)]
    email: String,
    deleted_at: Option<i64>,
    #[unique(condition(kind == "it's \\ odd", level != -1))]
    #[model(max_length = 40)]
    badge: String,
    #[model(max_length = 40)]
    kind: String,
    level: i64,
}

fn member(team: i64, nick: &str, active: bool, email: &str, deleted_at: Option<i64>) -> Member {
    Member {
        id: 0,
        team,
        nick: nick.into(),
        active,
        email: email.into(),
        deleted_at,
        badge: format!("{nick}-{email}-{team}"),
        kind: "plain".into(),
        level: 0,
    }
}

/// Partial constraints ("unique among the rows not deleted"): the typed calls see only the rows the
/// condition covers, refuse a candidate outside it before any statement, and bulk inserts rows
/// outside it plainly; the literals are inline, quotes and backslashes included.
async fn partial_keys<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Member>()
        .create(&db.pool)
        .await
        .unwrap();
    let shown = Member::META.to_string();
    assert!(
        shown.contains("unique \"p_members_email_key\" (email) where deleted_at IS NULL"),
        "{shown}"
    );
    assert!(
        shown.contains("where kind = 'it''s \\ odd' and level <> -1"),
        "{shown}"
    );

    let (live, outcome) =
        Member::get_or_create_by_email(&db.pool, &member(1, "ann", true, "a@x", None))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let (again, outcome) =
        Member::get_or_create_by_email(&db.pool, &member(2, "bob", true, "a@x", None))
            .await
            .unwrap();
    assert_eq!(
        (outcome, again.id),
        (Outcome::Found, live.id),
        "{}",
        DB::DIALECT
    );
    // Outside the condition: refused before any statement.
    let error = Member::get_or_create_by_email(&db.pool, &member(3, "cy", true, "a@x", Some(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { .. }),
        "{}: {error:?}",
        DB::DIALECT
    );
    assert!(error.to_string().contains("p_members_email_key"), "{error}");

    // Soft-delete the row: its email is free again, and lookups see only the live row.
    Member {
        deleted_at: Some(1),
        ..live.clone()
    }
    .update(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Member::by_email("a@x").get(&db.pool).await.unwrap(),
        None,
        "{}",
        DB::DIALECT
    );
    let fresh = member(4, "dee", true, "a@x", None)
        .insert(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        Member::by_email("a@x")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|m| m.id),
        Some(fresh.id)
    );
    // A second live one is the partial constraint's duplicate, named.
    let error = member(5, "eve", true, "a@x", None)
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{}: {error:?}", DB::DIALECT));
    assert!(
        violation.is::<MemberByEmail>(),
        "{}: {violation}",
        DB::DIALECT
    );
    // validate_unique_new: a deleted candidate collides with nothing, a live one with the live row.
    assert!(
        member(6, "fay", true, "a@x", Some(9))
            .validate_unique_new(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );
    let found = member(6, "fay", true, "a@x", None)
        .validate_unique_new(&db.pool)
        .await
        .unwrap();
    assert!(
        found.len() == 1 && found[0].is::<MemberByEmail>(),
        "{}: {found:?}",
        DB::DIALECT
    );

    // The composite partial key folds `nick` and covers active members only.
    let (nick, _) =
        Member::get_or_create_by_team_and_nick(&db.pool, &member(7, "Zed", true, "z@x", None))
            .await
            .unwrap();
    let found = Member::by_team_and_nick(7, "ZED")
        .get(&db.pool)
        .await
        .unwrap();
    assert_eq!(found.map(|m| m.id), Some(nick.id), "{}", DB::DIALECT);
    member(7, "zed", false, "z2@x", None)
        .insert(&db.pool)
        .await
        .unwrap();
    let (row, outcome) = Member::update_or_create_by_team_and_nick(
        &db.pool,
        &Member {
            level: 3,
            ..member(7, "ZeD", true, "z3@x", None)
        },
        &[MemberField::Level],
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome, row.id, row.level),
        (Outcome::Updated, nick.id, 3),
        "{}",
        DB::DIALECT
    );

    // The literal with a quote and a backslash is the one the index holds.
    let odd = |badge: &str, level| Member {
        badge: badge.into(),
        kind: "it's \\ odd".into(),
        level,
        ..member(8, badge, false, &format!("{badge}@odd"), Some(1))
    };
    odd("b1", 0).insert(&db.pool).await.unwrap();
    let error = odd("b1", 2).insert(&db.pool).await.unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<MemberByBadge>()),
        "{}: {error:?}",
        DB::DIALECT
    );
    odd("b1", -1).insert(&db.pool).await.unwrap();
    Member {
        kind: "it's \\ odd ".into(),
        ..odd("b1", 0)
    }
    .insert(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Member::by_badge("b1")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|m| m.level),
        Some(0),
        "{}",
        DB::DIALECT
    );

    // Bulk: rows outside the condition are plain inserts; those inside dedupe and skip.
    let report = BulkInsert::<Member>::new()
        .skip_conflicts::<MemberByEmail>()
        .run(
            &db.pool,
            vec![
                member(10, "g1", true, "a@x", None),    // live, stored
                member(10, "g2", true, "a@x", Some(2)), // deleted: inserted
                member(10, "g3", true, "a@x", Some(3)), // deleted: inserted
                member(10, "g4", true, "new@x", None),  // live, new
                member(10, "g5", true, "new@x", None),  // repeat
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!(
        (
            report.inserted,
            report.skipped_existing,
            report.skipped_in_input
        ),
        (3, 1, 1),
        "{}",
        DB::DIALECT
    );
    let report = BulkInsert::<Member>::new()
        .update_conflicts::<MemberByEmail>(&[MemberField::Level])
        .run(
            &db.pool,
            vec![
                Member {
                    level: 11,
                    ..member(11, "h1", true, "new@x", None)
                },
                Member {
                    level: 12,
                    ..member(11, "h2", true, "new@x", Some(4))
                },
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert_eq!((report.inserted, report.updated), (1, 1), "{}", DB::DIALECT);
    assert_eq!(
        Member::by_email("new@x")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|m| m.level),
        Some(11)
    );

    // 64 tasks on one live key: one row.
    let mut tasks = Vec::new();
    for task in 0..64i64 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            Member::get_or_create_by_email(
                &pool,
                &member(task, &format!("r{task}"), true, "race@x", None),
            )
            .await
            .unwrap()
            .0
            .id
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "{}", DB::DIALECT);

    let plan = Schema::new()
        .model::<Member>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(plan.is_empty(), "{}: {:?}", DB::DIALECT, plan.steps);
}

/// An enum stored as text, in a partial constraint's condition: the literal is its stored name.
#[derive(model_runtime::Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
enum State {
    Open,
    Closed,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "tickets")]
struct Ticket {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(state == "open"))]
    #[model(max_length = 20)]
    code: String,
    #[model(max_length = 10)]
    state: State,
}

/// A condition over an enum column of the user's own: only open tickets share no code.
async fn conditions_over_own_column_types<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Ticket>()
        .create(&db.pool)
        .await
        .unwrap();
    let ticket = |code: &str, state| Ticket {
        id: 0,
        code: code.into(),
        state,
    };
    ticket("T-1", State::Closed).insert(&db.pool).await.unwrap();
    ticket("T-1", State::Closed).insert(&db.pool).await.unwrap();
    let (open, outcome) = Ticket::get_or_create_by_code(&db.pool, &ticket("T-1", State::Open))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created, "{}", DB::DIALECT);
    let error = ticket("T-1", State::Open)
        .insert(&db.pool)
        .await
        .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<TicketByCode>()),
        "{}: {error:?}",
        DB::DIALECT
    );
    assert_eq!(
        Ticket::by_code("T-1")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|t| t.id),
        Some(open.id)
    );
    let error = Ticket::get_or_create_by_code(&db.pool, &ticket("T-1", State::Closed))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { .. }),
        "{}: {error:?}",
        DB::DIALECT
    );
}

mod v1 {
    use model_runtime::Model;

    /// Before: an exact key on `email`, and no key on `(room, day)`.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "accounts")]
    pub struct Account {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 60)]
        pub email: String,
        pub room: i64,
        pub day: Option<i64>,
    }
}

mod v2 {
    use model_runtime::Model;

    /// After: `email` case-insensitive under a new name, `(room, day)` with NULLs colliding.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "accounts")]
    #[unique_together(room, day, nulls_not_distinct)]
    pub struct Account {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique(case_insensitive, name = "accounts_email_ci")]
        #[model(max_length = 60)]
        pub email: String,
        pub room: i64,
        pub day: Option<i64>,
    }
}

/// A live database moves to the new kinds: the plan finds the rows that would block them as the
/// new constraints compare (case variants, NULLs), resolves them when asked, and applies DDL that
/// the catalog and the typed calls then agree with.
async fn migrating_to_the_kinds<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v1::Account>()
        .create(&db.pool)
        .await
        .unwrap();
    let account = |email: &str, room, day| v1::Account {
        id: 0,
        email: email.into(),
        room,
        day,
    };
    for row in [
        account("Ann@x", 1, None),
        account("ann@X", 1, None),
        account("bob@x", 2, Some(3)),
        account("Ann@y", 3, Some(3)),
    ] {
        row.insert(&db.pool).await.unwrap();
    }
    let schema = Schema::new().model::<v2::Account>();
    let plan = schema.diff(&db.pool).await.unwrap();
    let groups = plan.duplicates(&db.pool, 10).await.unwrap();
    let mut found: Vec<(String, u64)> = groups
        .iter()
        .map(|g| (g.constraint.clone(), g.count))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("accounts_email_ci".to_owned(), 2),
            ("accounts_room_day_key".to_owned(), 2)
        ],
        "{}: {groups:?}",
        DB::DIALECT
    );
    assert!(
        plan.apply(&db.pool).await.is_err(),
        "{}: the duplicates block it",
        DB::DIALECT
    );
    let deleted = plan
        .resolve_duplicates(&db.pool, model_runtime::migrate::Keep::LowestPrimaryKey)
        .await
        .unwrap();
    // The two Ann rows are one group under each new constraint: one row goes.
    assert_eq!(deleted.len(), 2, "{}: {deleted:?}", DB::DIALECT);
    assert_eq!(DB::count(&db.pool, "accounts").await, 3);
    plan.apply(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert!(
        schema.diff(&db.pool).await.unwrap().is_empty(),
        "{}",
        DB::DIALECT
    );

    let found = v2::Account::by_email("ANN@X").get(&db.pool).await.unwrap();
    assert_eq!(
        found.map(|a| a.email),
        Some("Ann@x".to_owned()),
        "{}",
        DB::DIALECT
    );
    let (_, outcome) = v2::Account::get_or_create_by_room_and_day(
        &db.pool,
        &v2::Account {
            id: 0,
            email: "new@x".into(),
            room: 1,
            day: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Found, "{}", DB::DIALECT);
    let error = v2::Account {
        id: 0,
        email: "BOB@X".into(),
        room: 9,
        day: None,
    }
    .insert(&db.pool)
    .await
    .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(
        violation.is::<v2::AccountByEmail>(),
        "{}: {violation}",
        DB::DIALECT
    );
}

mod w1 {
    use model_runtime::Model;

    /// Before: plain keys under their default names; `tag` is no key (MariaDB gives it the table's
    /// case-folding collation).
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "handles")]
    pub struct Handle {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 40)]
        pub email: String,
        #[unique]
        pub code: i64,
        #[model(max_length = 40)]
        pub tag: String,
        pub live: bool,
    }
}

mod w2 {
    use model_runtime::Model;

    /// After: the same default names, other kinds; `tag` unique among live rows.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "handles")]
    pub struct Handle {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique(case_insensitive)]
        #[model(max_length = 40)]
        pub email: String,
        #[unique(nulls_not_distinct)]
        pub code: i64,
        #[unique(condition(live == true))]
        #[model(max_length = 40)]
        pub tag: String,
        pub live: bool,
    }
}

/// A constraint whose kind changes under its default name is dropped and added again (not matched
/// by name alone); a fresh table made by a migration gets its expression indexes; rows that differ
/// only by case, accent or trailing space in a column that was no key are no duplicates.
async fn kinds_change_under_the_same_name<DB: TestBackend>(db: TestDb<DB>) {
    // A migration that creates the table: the expression and partial indexes come with it.
    let fresh = Schema::new().model::<w2::Handle>();
    let plan = fresh.diff(&db.pool).await.unwrap();
    plan.apply(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert!(
        fresh.diff(&db.pool).await.unwrap().is_empty(),
        "{}",
        DB::DIALECT
    );
    let handle = |email: &str, code, tag: &str, live| w2::Handle {
        id: 0,
        email: email.into(),
        code,
        tag: tag.into(),
        live,
    };
    handle("A@x", 1, "t", true).insert(&db.pool).await.unwrap();
    let error = handle("a@X", 2, "u", true)
        .insert(&db.pool)
        .await
        .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<w2::HandleByEmail>()),
        "{}: {error:?}",
        DB::DIALECT
    );
    fresh.drop(&db.pool).await.unwrap();

    // Plain keys first, with rows that the new kinds must not take for duplicates.
    Schema::new()
        .model::<w1::Handle>()
        .create(&db.pool)
        .await
        .unwrap();
    let old = |email: &str, code, tag: &str, live| w1::Handle {
        id: 0,
        email: email.into(),
        code,
        tag: tag.into(),
        live,
    };
    for row in [
        old("a@x", 1, "é", true),
        old("b@x", 2, "e", true),
        old("c@x", 3, "E", true),
        old("d@x", 4, "e ", true),
        old("e@x", 5, "e", false),
    ] {
        row.insert(&db.pool).await.unwrap();
    }
    let schema = Schema::new().model::<w2::Handle>();
    let plan = schema.diff(&db.pool).await.unwrap();
    let touched: Vec<String> = plan.steps.iter().map(|step| step.to_string()).collect();
    for name in ["handles_email_key", "handles_tag_key"] {
        assert!(
            touched.iter().any(|s| s.contains(name)),
            "{}: {name} not in {touched:#?}",
            DB::DIALECT
        );
    }
    // The plain NOT NULL column's nulls_not_distinct changes nothing on MariaDB; on PostgreSQL it
    // is a clause of its own. (SQLite rebuilds the table for `email` and lists every constraint.)
    if DB::DIALECT != Dialect::Sqlite {
        let code_touched = touched.iter().any(|s| s.contains("handles_code_key"));
        assert_eq!(
            code_touched,
            DB::DIALECT == Dialect::Postgres,
            "{}: {touched:#?}",
            DB::DIALECT
        );
    }
    let groups = plan.duplicates(&db.pool, 10).await.unwrap();
    assert!(groups.is_empty(), "{}: {groups:?}", DB::DIALECT);
    plan.apply(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
    assert!(
        schema.diff(&db.pool).await.unwrap().is_empty(),
        "{}",
        DB::DIALECT
    );
    let found = w2::Handle::by_email("A@X").get(&db.pool).await.unwrap();
    assert_eq!(found.map(|h| h.code), Some(1), "{}", DB::DIALECT);
    let error = handle("z@x", 9, "E", true)
        .insert(&db.pool)
        .await
        .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<w2::HandleByTag>()),
        "{}: {error:?}",
        DB::DIALECT
    );
    handle("y@x", 8, "E", false).insert(&db.pool).await.unwrap();
}

backend_tests!(
    the_catalog_holds_each_kind,
    case_insensitive_keys_fold_ascii_only,
    case_insensitive_bulk,
    nulls_not_distinct_keys,
    races_leave_one_row_per_key,
    a_created_schema_diffs_clean,
    migrating_to_the_kinds,
    partial_keys,
    kinds_change_under_the_same_name,
    conditions_over_own_column_types,
);
