//! Starting an execution of a state machine, idempotently.

use super::RunbookState;
use crate::error::DrError;

/// Starts executions of one state machine.
#[derive(Debug, Clone)]
pub struct Starter {
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl Starter {
    pub fn new(sfn: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Starter {
        Starter { sfn, state_machine_arn: state_machine_arn.into() }
    }

    /// The Step Functions client it starts with (the reconciler reads the runs it started).
    pub fn client(&self) -> &aws_sdk_sfn::Client {
        &self.sfn
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    /// Starts the run named `input.run.id`. Starting it again with the same input is a no-op
    /// (Step Functions answers with the running execution); a finished execution of that name
    /// counts as started. Returns the execution ARN.
    pub async fn start(&self, input: &RunbookState) -> Result<String, DrError> {
        self.start_named(&input.run.id, input.to_json()?).await
    }

    /// Starts the execution `name` with the JSON `input`, idempotently as [`Starter::start`].
    pub async fn start_named(&self, name: &str, input: String) -> Result<String, DrError> {
        let result =
            self.sfn.start_execution().state_machine_arn(&self.state_machine_arn).name(name).input(input).send().await;
        match result {
            Ok(started) => Ok(started.execution_arn().to_string()),
            Err(err) if err.as_service_error().is_some_and(|se| se.is_execution_already_exists()) => {
                Ok(self.execution_arn(name))
            }
            Err(err) => Err(DrError::from_sdk("sfn", "StartExecution", err)),
        }
    }

    /// `arn:...:stateMachine:<name>` -> `arn:...:execution:<name>:<run id>`.
    pub fn execution_arn(&self, run_id: &str) -> String {
        format!("{}:{run_id}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }
}
