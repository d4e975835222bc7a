//! Lambda `restore-sql-probe`: the logic is `dr_core::restore::connect_probe`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_restore_sql_probe().await
}
