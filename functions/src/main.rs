//! `dr-lambda`, the one binary of every function (`bootstrap` in each zip): the function's
//! `Handler` (template.yaml), which Lambda passes to a custom runtime as `_HANDLER`, picks its
//! handler (`dr_functions::handlers`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    dr_functions::handlers::run(&handler).await
}
