// Executes one state machine in aws-local-stepfunctions (an existing ASL engine) and prints the
// execution as one JSON object: status, output or error/cause, every event with its time, wall time.
//
//   node tests/sfn/run.mjs DEFINITION.asl.json SUBSTITUTIONS.json < INPUT.json
//
// SUBSTITUTIONS fills the ${...} DefinitionSubstitutions as SAM would, here with the bare function
// names the local Lambda service (scripts/lambdas) serves; local-sfn calls Lambda at
// AWS_ENDPOINT_URL_LAMBDA, which answers a function error as Lambda does (HTTP 200,
// X-Amz-Function-Error), so the error's name reaches Retry/Catch.
// SFN_WAIT_MS compresses every Wait state and SFN_RETRY_MS every Retry interval (default 0 ms).
// A Task that starts another machine and waits for it (startExecution.sync:2, the round trip's
// legs) runs that machine here too (see startExecution below); `children` lists those runs.

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

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const { StateMachine } = await import('aws-local-stepfunctions');

const here = dirname(fileURLToPath(import.meta.url));
const [definitionPath, substitutionsPath] = process.argv.slice(2);

// Every Wait and every Retry-bearing state, wherever it is nested (Parallel branches).
const overridesOf = (definition, startExecution) => {
  const waits = {};
  const retries = {};
  const tasks = {};
  const collect = (states) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Wait') waits[name] = Number(process.env.SFN_WAIT_MS ?? 0);
      if (state.Retry) retries[name] = Number(process.env.SFN_RETRY_MS ?? 0);
      if (String(state.Resource ?? '').startsWith('arn:aws:states:::states:startExecution.sync')) {
        tasks[name] = startExecution;
      }
      for (const branch of state.Branches ?? []) collect(branch.States);
    }
  };
  collect(definition.States);
  return { waitTimeOverrides: waits, retryIntervalOverrides: retries, taskResourceLocalHandlers: tasks };
};

const load = (path, substitutions) => {
  const text = readFileSync(path, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name) => {
    if (!(name in substitutions)) throw new Error(`no substitution for ${whole}`);
    return substitutions[name];
  });
  return JSON.parse(text);
};

// A nested execution (arn:aws:states:::states:startExecution.sync:2): Step Functions starts the
// named machine and answers when it ends, with its output parsed (":2"), or fails the Task with
// States.TaskFailed. Locally the machine's name (the round trip's substitution, e.g. "failover")
// is statemachines/<name>.asl.json with tests/sfn/<name>.local.json, run here in the same engine.
const children = [];
const startExecution = async (parameters) => {
  const name = parameters.StateMachineArn;
  const executionArn = `arn:aws:states:local:000000000000:execution:${name}:${parameters.Name}`;
  const child = await execute(
    join(here, '..', '..', 'statemachines', `${name}.asl.json`),
    JSON.parse(readFileSync(join(here, `${name}.local.json`), 'utf8')),
    parameters.Input,
    executionArn,
  );
  children.push({ machine: name, name: parameters.Name, status: child.status, wall_ms: child.wall_ms, events: child.events.length });
  if (child.status !== 'SUCCEEDED') {
    const failure = new Error(JSON.stringify({ ExecutionArn: executionArn, Status: 'FAILED', Error: child.error, Cause: child.cause }));
    failure.name = 'States.TaskFailed';
    throw failure;
  }
  return {
    ExecutionArn: executionArn,
    Input: parameters.Input,
    Name: parameters.Name,
    Output: child.output,
    StateMachineArn: `arn:aws:states:local:000000000000:stateMachine:${name}`,
    Status: 'SUCCEEDED',
    StartDate: child.started,
    StopDate: child.started + child.wall_ms,
  };
};

async function execute(path, substitutions, input, executionArn) {
  const definition = load(path, substitutions);
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
      events.push({
        type: event.type,
        state: event.state?.name ?? null,
        timestamp: event.timestamp,
        error: event.Error ?? null,
        cause: event.Cause ?? null,
      });
    }
  })();

  let result;
  try {
    const output = await execution.result;
    result = { status: 'SUCCEEDED', output };
  } catch (err) {
    result = { status: 'FAILED', error: err.name ?? 'Error', cause: err.cause ?? err.message ?? String(err) };
  }
  await logging.catch(() => {});
  // The execution's own error and cause (the Fail state's ErrorPath/CausePath), as Step Functions
  // reports them, rather than the engine's exception wrapper.
  const failed = events.findLast((event) => event.type === 'ExecutionFailed');
  if (failed) {
    result.error = failed.error ?? result.error;
    result.cause = failed.cause ?? result.cause;
  }
  result.started = started;
  result.wall_ms = Date.now() - started;
  result.events = events;
  return result;
}

const result = await execute(
  definitionPath,
  JSON.parse(readFileSync(substitutionsPath, 'utf8')),
  JSON.parse(readFileSync(0, 'utf8')),
  `arn:aws:states:local:000000000000:execution:${basename(definitionPath, '.asl.json')}:local`,
);
delete result.started;
result.children = children;
process.stdout.write(`${JSON.stringify(result)}\n`);
