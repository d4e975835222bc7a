// The local Step Functions service: the Step Functions API (AWS JSON 1.0, as the SDKs and the CLI
// speak it) on 127.0.0.1:$SFN_PORT, in front of aws-local-stepfunctions (engine.mjs). moto's Step
// Functions records executions and runs none; here StartExecution really runs the state machine,
// with the real Lambdas behind its Tasks (AWS_ENDPOINT_URL_LAMBDA, the local Lambda service), and
// DescribeExecution, GetExecutionHistory, ListExecutions and StopExecution answer from that run.
// A thin service around the engine, not an ASL interpreter. Everything is kept in memory.
//
// As on AWS: an ARN names the region the request was signed for and the account (moto's,
// 123456789012); a definition is registered with its substitutions already made (SAM makes them
// on deploy; `dr-emulator triggers` here); StartExecution with the name of an execution that
// exists is idempotent while that one runs with the same input and ExecutionAlreadyExists
// otherwise; StopExecution stops an execution and the executions it started and waits for
// (startExecution.sync); the history's event types and fields are Step Functions'.
//
//   node tests/sfn/server.mjs PORT       (scripts/stepfunctions start)

import { createServer } from 'node:http';

import { childFailed, startExecutionOf } from './engine.mjs';

const ACCOUNT = '123456789012';
const port = Number(process.argv[2] ?? process.env.SFN_PORT ?? 8083);

const machines = new Map(); // stateMachineArn -> { arn, name, definition, roleArn, created }
const executions = new Map(); // executionArn -> execution (see start)

class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

const seconds = (ms) => ms / 1000;
const regionOf = (request) =>
  /Credential=[^/]+\/[^/]+\/([^/]+)\//.exec(request.headers.authorization ?? '')?.[1] ?? process.env.AWS_REGION ?? 'eu-west-1';
const required = (body, field) => {
  if (typeof body[field] !== 'string' || body[field] === '') throw new ApiError('ValidationException', `${field} is required`);
  return body[field];
};
const machineOf = (arn) => {
  const machine = machines.get(arn);
  if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
  return machine;
};
const executionOf = (arn) => {
  const execution = executions.get(arn);
  if (!execution) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
  return execution;
};
const parseDefinition = (text) => {
  try {
    const definition = JSON.parse(text);
    if (typeof definition.StartAt !== 'string' || typeof definition.States !== 'object') throw new Error('no StartAt or States');
    return definition;
  } catch (err) {
    throw new ApiError('InvalidDefinition', `Invalid State Machine Definition: ${err.message}`);
  }
};
// A page of `items` from the offset in `nextToken`.
const page = (items, body) => {
  const max = Math.min(Number(body.maxResults) || 100, 1000);
  const offset = Number(body.nextToken ?? 0);
  const slice = items.slice(offset, offset + max);
  return { slice, nextToken: offset + max < items.length ? String(offset + max) : undefined };
};

// Step Functions' history event for one engine event (null: Step Functions records none).
const historyEvent = (event, execution) => {
  const at = { timestamp: seconds(event.timestamp) };
  const json = (value) => JSON.stringify(value ?? null);
  const kind = event.stateType;
  switch (event.type) {
    case 'ExecutionStarted':
      return { ...at, type: 'ExecutionStarted', executionStartedEventDetails: { input: execution.input, roleArn: execution.roleArn } };
    case 'ExecutionSucceeded':
      return { ...at, type: 'ExecutionSucceeded', executionSucceededEventDetails: { output: json(event.output) } };
    case 'ExecutionFailed':
      return { ...at, type: 'ExecutionFailed', executionFailedEventDetails: { error: event.error, cause: causeText(event.cause) } };
    case 'ExecutionTerminated':
      return null; // StopExecution records ExecutionAborted itself, with its error and cause.
    case 'StateEntered':
      return { ...at, type: `${kind}StateEntered`, stateEnteredEventDetails: { name: event.state, input: json(event.input) } };
    case 'StateExited':
      if (kind === 'Fail') return null;
      return { ...at, type: `${kind}StateExited`, stateExitedEventDetails: { name: event.state, output: json(event.output) } };
    case 'StateFailed':
      if (kind === 'Task') {
        return { ...at, type: 'TaskFailed', taskFailedEventDetails: { resourceType: 'lambda', resource: 'invoke', error: event.error, cause: causeText(event.cause) } };
      }
      if (kind === 'Parallel' || kind === 'Map') return { ...at, type: `${kind}StateFailed` };
      return null;
    case 'StateRetried':
      // A retried Task is scheduled again.
      return { ...at, type: 'TaskScheduled', taskScheduledEventDetails: { resourceType: 'lambda', resource: 'invoke', region: execution.region, parameters: json(event.input) } };
    case 'ParallelBranchStarted':
      return null;
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
      return { ...at, type: event.type };
    default:
      return null;
  }
};
const causeText = (cause) => (typeof cause === 'string' ? cause : JSON.stringify(cause ?? ''));

const record = (execution, event) => {
  if (!event) return;
  const id = execution.history.length + 1;
  execution.history.push({ ...event, id, previousEventId: id - 1 });
};

// Runs an execution of `machine` in the engine; returns it at once (StartExecution answers
// before the run ends).
const start = (machine, name, input, parent) => {
  const arn = machine.arn.replace(':stateMachine:', ':execution:') + `:${name}`;
  const region = machine.arn.split(':')[3];
  const execution = {
    arn,
    name,
    machine,
    region,
    roleArn: machine.roleArn,
    input,
    status: 'RUNNING',
    startDate: Date.now(),
    stopDate: undefined,
    history: [],
    children: new Set(),
    parent,
  };
  let parsed;
  try {
    parsed = JSON.parse(input);
  } catch (err) {
    throw new ApiError('InvalidExecutionInput', `Invalid execution input: ${err.message}`);
  }
  executions.set(arn, execution);
  // A Task that starts another machine and waits for it (.sync:2): that machine's execution runs
  // here too, is listed and described like any other, and answers the Task when it ends.
  const startExecutionSync = async (parameters) => {
    const child = start(machineOf(parameters.StateMachineArn), parameters.Name ?? crypto.randomUUID(), JSON.stringify(parameters.Input ?? {}), execution);
    execution.children.add(child);
    const result = await child.finished;
    if (result.status !== 'SUCCEEDED') throw childFailed(child.arn, child.status, child.error, child.cause);
    return {
      ExecutionArn: child.arn,
      Input: parameters.Input,
      Name: child.name,
      Output: result.output,
      StateMachineArn: child.machine.arn,
      Status: 'SUCCEEDED',
      StartDate: child.startDate,
      StopDate: child.stopDate,
    };
  };
  const run = startExecutionOf(machine.definition, {
    input: parsed,
    executionArn: arn,
    startExecution: startExecutionSync,
    onEvent: (event) => record(execution, historyEvent(event, execution)),
  });
  execution.abort = run.abort;
  execution.finished = run.done.then((result) => {
    if (execution.status === 'RUNNING') {
      execution.status = result.status;
      execution.stopDate = Date.now();
      execution.output = result.status === 'SUCCEEDED' ? JSON.stringify(result.output ?? null) : undefined;
      execution.error = result.error;
      execution.cause = result.cause === undefined ? undefined : causeText(result.cause);
    }
    log(`${execution.name}: ${execution.status}${execution.error ? ` ${execution.error}` : ''}`);
    return result;
  });
  log(`${machine.name}: started ${name}`);
  return execution;
};

// Stops a running execution and those it started and waits for, as Step Functions does.
const stop = (execution, error, cause) => {
  if (execution.status !== 'RUNNING') return;
  execution.status = 'ABORTED';
  execution.stopDate = Date.now();
  execution.error = error;
  execution.cause = cause;
  for (const child of execution.children) stop(child, 'States.Aborted', `parent ${execution.arn} stopped`);
  execution.abort();
  record(execution, { timestamp: seconds(execution.stopDate), type: 'ExecutionAborted', executionAbortedEventDetails: { error, cause } });
};

const listed = (execution) => ({
  executionArn: execution.arn,
  stateMachineArn: execution.machine.arn,
  name: execution.name,
  status: execution.status,
  startDate: seconds(execution.startDate),
  stopDate: execution.stopDate === undefined ? undefined : seconds(execution.stopDate),
});
const described = (execution) => ({
  ...listed(execution),
  input: execution.input,
  inputDetails: { included: true },
  output: execution.output,
  outputDetails: execution.output === undefined ? undefined : { included: true },
  error: execution.error,
  cause: execution.cause,
  parentExecutionArn: execution.parent?.arn,
});

const operations = {
  CreateStateMachine: (body, request) => {
    const name = required(body, 'name');
    const definitionText = required(body, 'definition');
    const definition = parseDefinition(definitionText);
    const arn = `arn:aws:states:${regionOf(request)}:${ACCOUNT}:stateMachine:${name}`;
    const existing = machines.get(arn);
    if (existing) {
      if (existing.definitionText !== definitionText || existing.roleArn !== body.roleArn) {
        throw new ApiError('StateMachineAlreadyExists', `State Machine Already Exists: '${arn}'`);
      }
      return { stateMachineArn: arn, creationDate: seconds(existing.created) };
    }
    const machine = { arn, name, definition, definitionText, roleArn: body.roleArn, created: Date.now() };
    machines.set(arn, machine);
    return { stateMachineArn: arn, creationDate: seconds(machine.created) };
  },
  UpdateStateMachine: (body) => {
    const machine = machineOf(required(body, 'stateMachineArn'));
    if (body.definition !== undefined) {
      machine.definition = parseDefinition(body.definition);
      machine.definitionText = body.definition;
    }
    if (body.roleArn !== undefined) machine.roleArn = body.roleArn;
    return { updateDate: seconds(Date.now()) };
  },
  DescribeStateMachine: (body) => {
    const machine = machineOf(required(body, 'stateMachineArn'));
    return {
      stateMachineArn: machine.arn,
      name: machine.name,
      status: 'ACTIVE',
      definition: machine.definitionText,
      roleArn: machine.roleArn,
      type: 'STANDARD',
      creationDate: seconds(machine.created),
    };
  },
  ListStateMachines: (body) => {
    const { slice, nextToken } = page([...machines.values()], body);
    return {
      stateMachines: slice.map((m) => ({ stateMachineArn: m.arn, name: m.name, type: 'STANDARD', creationDate: seconds(m.created) })),
      nextToken,
    };
  },
  StartExecution: (body) => {
    const machine = machineOf(required(body, 'stateMachineArn'));
    const name = body.name ?? crypto.randomUUID();
    const input = body.input ?? '{}';
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
    const arn = machine.arn.replace(':stateMachine:', ':execution:') + `:${name}`;
    const existing = executions.get(arn);
    if (existing) {
      // Idempotent while the execution with this name runs with the same input (a retried call).
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn: arn, startDate: seconds(existing.startDate) };
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const execution = start(machine, name, input, undefined);
    return { executionArn: execution.arn, startDate: seconds(execution.startDate) };
  },
  DescribeExecution: (body) => described(executionOf(required(body, 'executionArn'))),
  ListExecutions: (body) => {
    const machine = machineOf(required(body, 'stateMachineArn'));
    // Newest first, as Step Functions lists them.
    const all = [...executions.values()]
      .filter((e) => e.machine === machine && (!body.statusFilter || e.status === body.statusFilter))
      .sort((a, b) => b.startDate - a.startDate);
    const { slice, nextToken } = page(all, body);
    return { executions: slice.map(listed), nextToken };
  },
  GetExecutionHistory: (body) => {
    const execution = executionOf(required(body, 'executionArn'));
    const events = body.reverseOrder ? [...execution.history].reverse() : execution.history;
    const { slice, nextToken } = page(events, body);
    return { events: slice, nextToken };
  },
  StopExecution: (body) => {
    const execution = executionOf(required(body, 'executionArn'));
    stop(execution, body.error, body.cause);
    return { stopDate: seconds(execution.stopDate ?? Date.now()) };
  },
};

const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

const server = createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const answer = (status, body) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify(body));
    };
    if (request.method === 'GET') return answer(200, { service: 'local Step Functions', machines: machines.size, executions: executions.size });
    const operation = String(request.headers['x-amz-target'] ?? '').split('.').pop();
    try {
      const handler = operations[operation];
      if (!handler) throw new ApiError('UnknownOperationException', `${operation} is not served by the local Step Functions`);
      const text = Buffer.concat(chunks).toString('utf8');
      answer(200, handler(text ? JSON.parse(text) : {}, request));
    } catch (err) {
      const type = err instanceof ApiError ? err.type : 'InternalFailure';
      if (!(err instanceof ApiError)) log(`${operation}: ${err.stack ?? err}`);
      answer(err.status ?? 500, { __type: `com.amazonaws.states#${type}`, message: err.message });
    }
  });
});
server.listen(port, '127.0.0.1', () => log(`local Step Functions on http://127.0.0.1:${port}`));
