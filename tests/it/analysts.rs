//! The database as analysts see it: the views, and the least-privilege roles that
//! `deploy/sql/roles.sql` creates for them and for the daemon.

use leadsync::fake_api::WorldSettings;
use sqlx::{Connection, PgConnection};

use crate::helpers::*;

const ROLES_SQL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/sql/roles.sql");

/// The relations an analyst may read; everything else in the schema must stay out of reach.
const ANALYST_RELATIONS: [&str; 6] = [
    "current_leads",
    "latest_leads",
    "lead_changes",
    "leads",
    "leads_per_bot_day",
    "sync_freshness",
];

/// One test's roles. Roles are cluster-wide and tests run in parallel, so every test names its
/// own (the script takes the names as psql variables). Dropped, with their grants in the test
/// database, when the test ends.
struct TestRoles {
    app: String,
    analyst: String,
    /// A person's login, member of the analyst group.
    person: String,
    db_url: String,
}

impl TestRoles {
    fn new(db_url: &str) -> TestRoles {
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        TestRoles {
            app: format!("leadsync_app_{suffix}"),
            analyst: format!("leadsync_analyst_{suffix}"),
            person: format!("leadsync_person_{suffix}"),
            db_url: db_url.to_owned(),
        }
    }

    /// The test database's URL, logging in as `role` (the test server trusts local logins).
    fn url_as(&self, role: &str) -> String {
        let mut url = url::Url::parse(&self.db_url).expect("database URL");
        url.set_username(role).expect("a username");
        url.to_string()
    }

    /// Runs `deploy/sql/roles.sql` with psql, as the operator would.
    async fn apply_script(&self) {
        self.apply_script_with(&[]).await;
    }

    /// [`TestRoles::apply_script`] with more psql variables (`name=value`).
    async fn apply_script_with(&self, variables: &[&str]) {
        let mut args = vec![
            self.db_url.clone(),
            "-X".into(),
            "-q".into(),
            "-v".into(),
            format!("app_role={}", self.app),
            "-v".into(),
            format!("analyst_role={}", self.analyst),
            "-v".into(),
            "app_password=not-used-over-trust-auth".into(),
            "-f".into(),
            ROLES_SQL.into(),
        ];
        for variable in variables {
            args.extend(["-v".to_owned(), (*variable).to_owned()]);
        }
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("psql").args(&args).output()
        })
        .await
        .expect("join")
        .expect("these tests need psql on the PATH");
        assert!(
            out.status.success(),
            "roles.sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a person's login in the analyst group and connects as them.
    async fn connect_as_person(&self, admin: &sqlx::PgPool) -> PgConnection {
        sqlx::query(&format!(
            "CREATE ROLE {} LOGIN IN ROLE {}",
            self.person, self.analyst
        ))
        .execute(admin)
        .await
        .expect("create the person's login");
        PgConnection::connect(&self.url_as(&self.person))
            .await
            .expect("log in as the person")
    }
}

impl Drop for TestRoles {
    fn drop(&mut self) {
        let (url, roles) = (
            self.db_url.clone(),
            [self.person.clone(), self.analyst.clone(), self.app.clone()],
        );
        clean_up_after_test(async move {
            if let Ok(mut admin) = PgConnection::connect(&url).await {
                for role in roles {
                    // Its grants and objects in the test database, then the role itself.
                    let _ = sqlx::query(&format!("DROP OWNED BY {role}"))
                        .execute(&mut admin)
                        .await;
                    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
                        .execute(&mut admin)
                        .await;
                }
            }
        });
    }
}

/// Whether `sql` fails for lack of privilege (SQLSTATE 42501).
async fn refused(conn: &mut PgConnection, sql: &str) -> bool {
    match sqlx::query(sql).execute(&mut *conn).await {
        Err(sqlx::Error::Database(err)) => err.code().as_deref() == Some("42501"),
        _ => false,
    }
}

/// A `sync_freshness` row: (bot_uid, bot_name, has succeeded, last run status, lag under a day).
type FreshnessRow = (String, Option<String>, bool, Option<String>, bool);

fn with_bot_names(toml: &str) -> String {
    toml.replace(
        &format!("uid = {BOT_A:?}\n"),
        &format!("uid = {BOT_A:?}\nname = \"Website support\"\n"),
    )
}

#[tokio::test]
async fn the_views_answer_the_common_questions_with_the_configured_bot_names() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 120, days_ago(60), days_ago(0), 80);
    h.world
        .generate_leads(BOT_B, 30, days_ago(10), days_ago(0), 81);

    let reports = h.sync_toml(&with_bot_names(&h.config_toml("")), &[]).await;
    assert_all_succeeded(&reports);

    // Per bot and UTC day: the same counts as grouping the truth by day.
    let per_day: Vec<(String, Option<String>, chrono::NaiveDate, i64)> = sqlx::query_as(
        "SELECT bot_uid, bot_name, day, leads FROM leads_per_bot_day ORDER BY bot_uid, day",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("leads_per_bot_day");
    for bot in [BOT_A, BOT_B] {
        let mut truth = std::collections::BTreeMap::new();
        for lead in h.world.truth(bot) {
            *truth.entry(lead.created_at.date_naive()).or_insert(0_i64) += 1;
        }
        let viewed: std::collections::BTreeMap<_, _> = per_day
            .iter()
            .filter(|row| row.0 == bot)
            .map(|row| (row.2, row.3))
            .collect();
        assert_eq!(viewed, truth, "leads per day of {bot}");
    }
    assert!(
        per_day
            .iter()
            .all(|row| row.1.as_deref() == (row.0 == BOT_A).then_some("Website support")),
        "the configured name, or NULL for a bot without one"
    );

    // The latest leads: the last 30 days only, newest first, with the bot's name.
    let latest: Vec<(chrono::DateTime<chrono::Utc>, Option<String>)> =
        sqlx::query_as("SELECT created_at, bot_name FROM latest_leads WHERE bot_uid = $1")
            .bind(BOT_A)
            .fetch_all(&h.db.pool)
            .await
            .expect("latest_leads");
    let recent = h
        .world
        .truth(BOT_A)
        .iter()
        .filter(|lead| lead.created_at > days_ago(30))
        .count();
    assert_eq!(latest.len(), recent);
    assert!(latest.windows(2).all(|pair| pair[0].0 >= pair[1].0));
    assert!(
        latest
            .iter()
            .all(|row| row.1.as_deref() == Some("Website support"))
    );

    // Freshness: one row per bot, the last run's outcome, the newest lead's lag.
    let fresh: Vec<FreshnessRow> = sqlx::query_as(
        "SELECT bot_uid, bot_name, last_success_at IS NOT NULL, last_run_status,
                newest_lead_lag BETWEEN interval '0' AND interval '1 day'
           FROM sync_freshness ORDER BY bot_uid",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("sync_freshness");
    let mut expected = vec![
        (
            BOT_A.to_owned(),
            Some("Website support".to_owned()),
            true,
            Some("succeeded".to_owned()),
            true,
        ),
        (
            BOT_B.to_owned(),
            None,
            true,
            Some("succeeded".to_owned()),
            true,
        ),
    ];
    expected.sort();
    assert_eq!(fresh, expected);

    // A renamed bot shows its new name on the next pass.
    let renamed = with_bot_names(&h.config_toml("")).replace("Website support", "Support");
    h.sync_toml(&renamed, &[]).await;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM bots WHERE bot_uid = $1")
        .bind(BOT_A)
        .fetch_one(&h.db.pool)
        .await
        .expect("bots");
    assert_eq!(name.as_deref(), Some("Support"));
}

#[tokio::test]
async fn every_view_and_every_new_table_and_their_columns_are_described() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.sync().await;

    let undescribed: Vec<String> = sqlx::query_scalar(
        "WITH described AS (
             SELECT c.oid, c.relname::text AS relname FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
              WHERE c.relkind = 'v' OR c.relname IN ('bots', 'forgotten_leads'))
         SELECT relname FROM described WHERE obj_description(oid, 'pg_class') IS NULL
         UNION ALL
         SELECT relname || '.' || a.attname FROM described d
           JOIN pg_attribute a ON a.attrelid = d.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE col_description(d.oid, a.attnum) IS NULL",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("catalog");
    assert_eq!(undescribed, Vec::<String>::new());
}

#[tokio::test]
async fn the_app_role_applies_the_migrations_and_syncs_without_being_a_superuser() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 150, days_ago(20), days_ago(0), 82);
    let roles = TestRoles::new(&h.db.url);
    roles.apply_script().await;
    let app_url = roles.url_as(&roles.app);

    let reports = h
        .sync_with(&[("LEADSYNC__DATABASE__URL", app_url.as_str())])
        .await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let (superuser, owner): (bool, String) = sqlx::query_as(
        "SELECT r.rolsuper, t.tableowner FROM pg_roles r, pg_tables t
          WHERE r.rolname = $1 AND t.tablename = 'leads'",
    )
    .bind(&roles.app)
    .fetch_one(&h.db.pool)
    .await
    .expect("catalog");
    assert!(!superuser);
    assert_eq!(
        owner, roles.app,
        "the app role created, so owns, its tables"
    );

    // Run again after the migration, as the README says: idempotent, and the app still works.
    roles.apply_script().await;
    h.world
        .generate_leads(BOT_A, 5, days_ago(1), days_ago(0), 83);
    let reports = h
        .sync_with(&[("LEADSYNC__DATABASE__URL", app_url.as_str())])
        .await;
    assert_all_succeeded(&reports);
    assert_eq!(report_for(&reports, BOT_A).counts.inserted, 5);
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn an_analyst_reads_the_leads_and_views_but_cannot_write_or_see_the_bookkeeping() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 40, days_ago(5), days_ago(0), 84);
    let roles = TestRoles::new(&h.db.url);
    roles.apply_script().await;
    let app_url = roles.url_as(&roles.app);
    assert_all_succeeded(
        &h.sync_with(&[("LEADSYNC__DATABASE__URL", app_url.as_str())])
            .await,
    );
    // After migrating, the script grants the views that now exist.
    roles.apply_script().await;
    let mut analyst = roles.connect_as_person(&h.db.pool).await;

    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&mut analyst)
        .await
        .expect("an analyst reads the leads");
    assert_eq!(leads, 40);
    for view in ["leads_per_bot_day", "latest_leads", "sync_freshness"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {view}"))
            .fetch_one(&mut analyst)
            .await
            .unwrap_or_else(|err| panic!("an analyst reads {view}: {err}"));
        assert!(rows > 0, "{view} is empty");
    }

    for write in [
        "INSERT INTO leads (conversation_uid, bot_uid, created_at, raw) VALUES ('x', 'b', now(), '{}')",
        "UPDATE leads SET remark = 'changed'",
        "DELETE FROM leads",
        "TRUNCATE leads",
        "CREATE TABLE mine (id int)",
    ] {
        assert!(
            refused(&mut analyst, write).await,
            "an analyst ran: {write}"
        );
    }
    for table in [
        "sync_runs",
        "sync_state",
        "rejected_leads",
        "forgotten_leads",
        "bots",
        "_sqlx_migrations",
    ] {
        assert!(
            refused(&mut analyst, &format!("SELECT * FROM {table}")).await,
            "an analyst read {table}"
        );
    }

    // Exactly the analyst relations are readable: a view added without updating roles.sql, or
    // a bookkeeping table granted by mistake, fails here.
    let readable: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
          WHERE c.relkind IN ('r', 'v', 'm') AND has_table_privilege(c.oid, 'SELECT')
          ORDER BY 1",
    )
    .fetch_all(&mut analyst)
    .await
    .expect("catalog");
    assert_eq!(readable, ANALYST_RELATIONS);
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT viewname::text FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("catalog");
    assert!(
        views.iter().all(|view| readable.contains(view)),
        "every view is for analysts, and granted: {views:?}"
    );
    analyst.close().await.expect("close");
}

#[tokio::test]
async fn an_app_role_that_may_not_migrate_is_told_what_to_do_and_the_daemon_does_not_retry() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let roles = TestRoles::new(&h.db.url);
    roles.apply_script_with(&["app_migrates=off"]).await;
    let app_url = roles.url_as(&roles.app);
    let toml = h.config_toml("").replace(
        &format!("url = {:?}", h.db.url),
        &format!("url = {app_url:?}"),
    );
    let config = write_config(&toml);
    for args in [&["sync"][..], &["run"]] {
        let (code, _, stderr) = leadsync_command(&config, args).await;
        let last = stderr.trim().lines().last().unwrap_or_default().to_owned();
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("permission denied").count(),
            1,
            "{args:?}: once, no retries: {stderr}"
        );
        for wanted in [
            "run `leadsync migrate` as the role that owns it",
            "database.migrate_on_start = false",
        ] {
            assert!(last.contains(wanted), "{args:?}: {last}");
        }
    }
}

/// The statements of README's "For analysts" ```sql blocks: the analysts' own (before the
/// bookkeeping), and the operators' (after it).
fn readme_queries() -> (Vec<String>, Vec<String>) {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## For analysts")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a For analysts section");
    let (analysts, operators) = section
        .split_once("**Bookkeeping**")
        .expect("a bookkeeping paragraph");
    (statements(analysts), statements(operators))
}

fn statements(text: &str) -> Vec<String> {
    let mut queries = Vec::new();
    for block in text.split("```sql\n").skip(1) {
        let code = block.split("\n```").next().expect("a closed block");
        let code: String = code
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        queries.extend(
            code.split(';')
                .map(str::trim)
                .filter(|query| !query.is_empty())
                .map(str::to_owned),
        );
    }
    queries
}

#[tokio::test]
async fn every_query_readme_gives_analysts_runs_as_the_analyst_role() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 40, days_ago(5), days_ago(0), 85);
    let roles = TestRoles::new(&h.db.url);
    roles.apply_script().await;
    let app_url = roles.url_as(&roles.app);
    let as_app = [("LEADSYNC__DATABASE__URL", app_url.as_str())];
    assert_all_succeeded(&h.sync_with(&as_app).await);
    // An edit, so the history has a row to show.
    let uid = h.world.truth(BOT_A)[0].conversation_uid.clone();
    h.world
        .edit_lead(&uid, "remark", serde_json::json!("edited"));
    assert_all_succeeded(&h.sync_with(&as_app).await);
    roles.apply_script().await;
    let mut analyst = roles.connect_as_person(&h.db.pool).await;

    let (analysts, operators) = readme_queries();
    assert!(analysts.len() >= 6, "{analysts:?}");
    for query in &analysts {
        sqlx::query(query)
            .fetch_all(&mut analyst)
            .await
            .unwrap_or_else(|err| panic!("README query failed as the analyst: {query}\n{err}"));
    }
    assert!(!operators.is_empty());
    for query in &operators {
        sqlx::query(query)
            .fetch_all(&h.db.pool)
            .await
            .unwrap_or_else(|err| panic!("README query failed as an operator: {query}\n{err}"));
    }
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM lead_changes")
        .fetch_one(&mut analyst)
        .await
        .expect("an analyst reads the history");
    assert_eq!(changes, 1);
}
