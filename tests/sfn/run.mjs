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

const { StateMachine } = await import('aws-local-stepfunctions');

const [definitionPath, substitutionsPath] = process.argv.slice(2);
const substitutions = JSON.parse(readFileSync(substitutionsPath, 'utf8'));
const text = readFileSync(definitionPath, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name) => {
  if (!(name in substitutions)) throw new Error(`no substitution for ${whole}`);
  return substitutions[name];
});
const definition = JSON.parse(text);
const input = JSON.parse(readFileSync(0, 'utf8'));

// Every Wait and every Retry-bearing state, wherever it is nested (Parallel branches).
const waits = {};
const retries = {};
const collect = (states) => {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Wait') waits[name] = Number(process.env.SFN_WAIT_MS ?? 0);
    if (state.Retry) retries[name] = Number(process.env.SFN_RETRY_MS ?? 0);
    for (const branch of state.Branches ?? []) collect(branch.States);
  }
};
collect(definition.States);

const machine = new StateMachine(definition, {
  validationOptions: { checkArn: false },
  awsConfig: {
    region: process.env.AWS_REGION ?? 'eu-west-1',
    credentials: { accessKeys: { accessKeyId: 'testing', secretAccessKey: 'testing' } },
  },
});
const started = Date.now();
const execution = machine.run(input, { overrides: { waitTimeOverrides: waits, retryIntervalOverrides: retries } });
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
result.wall_ms = Date.now() - started;
result.events = events;
process.stdout.write(`${JSON.stringify(result)}\n`);
