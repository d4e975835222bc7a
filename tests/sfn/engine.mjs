// One execution of a state machine in aws-local-stepfunctions (an existing ASL engine): shared by
// run.mjs (one execution, printed) and server.mjs (the local Step Functions service).
//
// SFN_WAIT_MS compresses every Wait state and SFN_RETRY_MS every Retry interval (default 0 ms).
// A Task that starts another machine and waits for it (startExecution.sync:2, the round trip's
// legs) calls the `startExecution` the caller gives, which answers as Step Functions does.

// aws-local-stepfunctions 3 needs Node >= 22; Node 20 lacks only Promise.withResolvers.
if (!Promise.withResolvers) {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { StateMachine } = await import('aws-local-stepfunctions');

const START_EXECUTION_SYNC = 'arn:aws:states:::states:startExecution.sync';

// Every Wait and every Retry-bearing state, wherever it is nested (Parallel branches).
const overridesOf = (definition, startExecution) => {
  const waits = {};
  const retries = {};
  const tasks = {};
  const collect = (states) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Wait') waits[name] = Number(process.env.SFN_WAIT_MS ?? 0);
      if (state.Retry) retries[name] = Number(process.env.SFN_RETRY_MS ?? 0);
      if (String(state.Resource ?? '').startsWith(START_EXECUTION_SYNC)) tasks[name] = startExecution;
      for (const branch of state.Branches ?? []) collect(branch.States);
    }
  };
  collect(definition.States);
  return { waitTimeOverrides: waits, retryIntervalOverrides: retries, taskResourceLocalHandlers: tasks };
};

// The Task's failure when a started execution did not succeed, as Step Functions fails it.
export const childFailed = (executionArn, status, error, cause) => {
  const failure = new Error(JSON.stringify({ ExecutionArn: executionArn, Status: status, Error: error, Cause: cause }));
  failure.name = 'States.TaskFailed';
  return failure;
};

// Starts an execution of `definition` (parsed, substitutions applied) on `input`. Returns
// { abort, done }: `done` resolves, whatever the outcome, to { status: SUCCEEDED | FAILED |
// ABORTED, output | error and cause, started, wall_ms, events }; `onEvent` sees each engine event
// as it happens (events: { type, state, stateType, timestamp, error, cause, input, output }).
export function startExecutionOf(definition, { input, executionArn, startExecution, onEvent = () => {} }) {
  const machine = new StateMachine(definition, {
    validationOptions: { checkArn: false },
    awsConfig: {
      region: process.env.AWS_REGION ?? 'eu-west-1',
      credentials: { accessKeys: { accessKeyId: 'testing', secretAccessKey: 'testing' } },
    },
  });
  const started = Date.now();
  // The Context Object as Step Functions fills it ($$.Execution.Id names the parent of a leg).
  const context = {
    Execution: { Id: executionArn, Name: executionArn.split(':').pop(), Input: input, StartTime: new Date(started).toISOString() },
  };
  const execution = machine.run(input, { overrides: overridesOf(definition, startExecution), context });
  const events = [];
  const logging = (async () => {
    for await (const event of execution.eventLogs) {
      const recorded = {
        type: event.type,
        state: event.state?.name ?? null,
        stateType: event.state?.type ?? event.parentState?.type ?? null,
        timestamp: event.timestamp,
        error: event.Error ?? null,
        cause: event.Cause ?? null,
        input: event.state?.input ?? event.input,
        output: event.state?.output ?? event.output,
      };
      events.push(recorded);
      onEvent(recorded);
    }
  })();
  let aborted = false;
  const done = (async () => {
    let result;
    try {
      const output = await execution.result;
      result = { status: 'SUCCEEDED', output };
    } catch (err) {
      result = aborted
        ? { status: 'ABORTED' }
        : { status: 'FAILED', error: err.name ?? 'Error', cause: err.cause ?? err.message ?? String(err) };
    }
    await logging.catch(() => {});
    // The execution's own error and cause (the Fail state's ErrorPath/CausePath), as Step Functions
    // reports them, rather than the engine's exception wrapper.
    const failed = events.findLast((event) => event.type === 'ExecutionFailed');
    if (failed && result.status === 'FAILED') {
      result.error = failed.error ?? result.error;
      result.cause = failed.cause ?? result.cause;
    }
    result.started = started;
    result.wall_ms = Date.now() - started;
    result.events = events;
    return result;
  })();
  return {
    started,
    done,
    abort: () => {
      aborted = true;
      execution.abort();
    },
  };
}
