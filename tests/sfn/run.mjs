// Executes one state machine in aws-local-stepfunctions (an existing ASL engine) and prints the
// execution as one JSON object: status, output or error/cause, every event with its time, wall time.
//
//   node tests/sfn/run.mjs DEFINITION.asl.json SUBSTITUTIONS.json < INPUT.json
//
// SUBSTITUTIONS fills the ${...} DefinitionSubstitutions as SAM would, here with the bare function
// names that `cargo lambda watch` serves (local-sfn calls Lambda at AWS_ENDPOINT_URL_LAMBDA).
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
import http from 'node:http';

// Real Lambda answers a function error with HTTP 200, `X-Amz-Function-Error: Unhandled` and the
// {errorType, errorMessage} payload, which is how Step Functions learns the error's name.
// `cargo lambda watch` answers HTTP 500 with the same payload instead, so the SDK would only see
// "Unknown". This loopback proxy restores the real answer; the function's payload is untouched.
const lambdaServer = new URL(process.env.AWS_ENDPOINT_URL_LAMBDA ?? 'http://127.0.0.1:9000');
const proxy = http.createServer((request, response) => {
  const upstream = http.request(
    { host: lambdaServer.hostname, port: lambdaServer.port, path: request.url, method: request.method, headers: request.headers },
    (answer) => {
      const chunks = [];
      answer.on('data', (chunk) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers = { ...answer.headers };
        let status = answer.statusCode ?? 502;
        if (status >= 500 && body.includes('"errorType"')) {
          status = 200;
          headers['x-amz-function-error'] = 'Unhandled';
        }
        response.writeHead(status, headers);
        response.end(body);
      });
    },
  );
  upstream.on('error', (err) => {
    response.writeHead(502);
    response.end(String(err));
  });
  request.pipe(upstream);
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
process.env.AWS_ENDPOINT_URL_LAMBDA = `http://127.0.0.1:${proxy.address().port}`;

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
proxy.close();
