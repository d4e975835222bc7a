// Executes one state machine in aws-local-stepfunctions (an existing ASL engine, engine.mjs) and
// prints the execution as one JSON object: status, output or error/cause, every event with its
// time, wall time.
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
// The local Step Functions service (server.mjs) runs what StartExecution starts the same way.

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { childFailed, startExecutionOf } from './engine.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [definitionPath, substitutionsPath] = process.argv.slice(2);

const load = (path, substitutions) => {
  const text = readFileSync(path, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name) => {
    if (!(name in substitutions)) throw new Error(`no substitution for ${whole}`);
    return substitutions[name];
  });
  return JSON.parse(text);
};

// A nested execution (arn:aws:states:::states:startExecution.sync:2): Step Functions starts the
// named machine and answers when it ends, with its output parsed (":2"), or fails the Task with
// States.TaskFailed. Here the machine's name (the round trip's substitution, e.g. "failover")
// is statemachines/<name>.asl.json with tests/sfn/<name>.local.json, run in the same engine.
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
  if (child.status !== 'SUCCEEDED') throw childFailed(executionArn, 'FAILED', child.error, child.cause);
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

const execute = (path, substitutions, input, executionArn) =>
  startExecutionOf(load(path, substitutions), { input, executionArn, startExecution }).done;

const result = await execute(
  definitionPath,
  JSON.parse(readFileSync(substitutionsPath, 'utf8')),
  JSON.parse(readFileSync(0, 'utf8')),
  `arn:aws:states:local:000000000000:execution:${basename(definitionPath, '.asl.json')}:local`,
);
delete result.started;
// The engine's events as the tests read them (type, state, time, error).
result.events = result.events.map(({ type, state, timestamp, error, cause }) => ({ type, state, timestamp, error, cause }));
result.children = children;
process.stdout.write(`${JSON.stringify(result)}\n`);
