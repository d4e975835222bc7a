// The local stack's IAM decisions: @cloud-copilot/iam-simulate evaluates each call a local
// function makes against the policies of its role (identity policies, the resource's policy, SCPs
// when a test gives them), as IAM does. A child process of the emulator (moto/iam.py), spoken to
// in JSON lines on stdin/stdout:
//
//   {"op": "deploy", "id", "roles": {function: {"role", "policies": [{name, policy, inline}]}},
//    "resource_policies": {arn: policy}, "scps": [policy]}                 -> {"ok": true}
//   {"op": "authorize", "function", "principal", "account",
//    "checks": [{"action", "resource", "context"}], "scps": [policy]}     -> {"allowed", "deployment", "denied"}
//   {"op": "mutations"}           -> per function: each Allow statement, how many allowed calls need it
//   {"op": "simulate", "deployment", "function", "scps", "account", "action", "resource",
//    "context"}                                                            -> {"decision", "by_scp", ...}
//   {"op": "trust", "principal", "account", "role_arn", "trust", "context"}
//                                  -> {"decision"}: whether a member role's trust policy lets the
//                                     principal (a role of another account) assume it; the
//                                     principal's own policy is decided by "authorize"
//   {"op": "simulate_role", "role", "scps", "account", "action", "resource", "context"}
//                                  -> {"decision", "by_scp", ..., "role"} for the role of that
//                                     (physical) name in the most recently registered deployment
//                                     having it, or {"no_such_role": true}
//
// A call is allowed when every check is allowed for the function's role in one deployment (the
// local Lambda service runs one set of functions for every plan the tests deploy; on AWS each
// stack has its own). Deployments are tried most recently used first. The SCPs over a call are
// those in force for every call (the message's) and those of its deployment's account.
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const deployments = []
// Registrations so far: a deployment's `registered` is its place in that order.
let registrations = 0
// Every distinct allowed call: {function, deployment, principal, checks}, for the mutation check.
const allowedCalls = new Map()

// iam-simulate reads a `*` inside a request's ARN as a pattern; AWS authorizes a describe with no
// identifier on that ARN literally, so only a policy resource that matches every name (`db:*`)
// allows it. A name no policy of the plan can spell stands for it.
const ANY_NAME = '_every_'

function literal(resource) {
  return resource === '*' ? resource : resource.replaceAll('*', ANY_NAME)
}

function bucketOf(resource) {
  const match = /^arn:aws:s3:::([^/]+)/.exec(resource)
  return match ? `arn:aws:s3:::${match[1]}` : null
}

// A KMS key is used only as its key policy allows; the keys a plan names are the customer's, not
// the stack's, so they have the default key policy, which lets the account's IAM policies decide
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
function defaultKeyPolicy(account) {
  return {
    Version: '2012-10-17',
    Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
  }
}

// The resource's own policy: the bucket's (from the deployment), or a key's default key policy.
function resourcePolicyOf(resource, deployment, account) {
  const bucket = bucketOf(resource)
  if (bucket) return deployment?.resource_policies?.[bucket]
  if (/^arn:aws:kms:/.test(resource)) return defaultKeyPolicy(account)
  return undefined
}

// The SCPs over a call `message` asks about, answered from `deployment`.
function scpsOf(message, deployment) {
  return (message.scps ?? []).concat(deployment?.scps ?? [])
}

// The statements that decided: the allows, or for an explicit deny the denies only ("the deny
// statement is the only entry included in the result", IAM API Reference, EvaluationResult).
function statementRefs(statements) {
  return statements.map((s) => ({ policy: s.policyId ?? s.explain?.policyId ?? '', sid: s.explain?.identifier ?? '' }))
}

async function decide({ policies, resourcePolicy, scps, principal, account, action, resource, context }) {
  const simulation = {
    identityPolicies: policies,
    serviceControlPolicies: scps && scps.length ? [{ orgIdentifier: 'ou-local', policies: scps.map((policy, i) => ({ name: `scp${i}`, policy })) }] : [],
    resourceControlPolicies: [],
    request: {
      principal,
      action,
      resource: { resource: literal(resource), accountId: account },
      contextVariables: context || {},
    },
  }
  if (resourcePolicy) simulation.resourcePolicy = resourcePolicy
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    return { decision: 'Error', reason: `the evaluator refused the request: ${JSON.stringify(response.errors)}` }
  }
  // A request on `*` is answered per matching resource type ("wildcard": `results`), any other
  // with one `result`: the deciding analysis is the first that does not allow.
  const analyses = response.result ? [response.result.analysis] : (response.results ?? []).map((r) => r.analysis)
  const analysis = analyses.find((a) => a && a.result !== 'Allowed') ?? analyses[0] ?? {}
  const scpDenied = analysis.scpAnalysis && analysis.scpAnalysis.result && analysis.scpAnalysis.result !== 'Allowed'
  const denies = (analysis.resourceAnalysis?.denyStatements ?? []).concat(analysis.identityAnalysis?.denyStatements ?? [])
  return {
    decision: response.overallResult,
    by_scp: Boolean(scpDenied),
    deny_statements: denies.map((s) => s.explain?.identifier ?? s.statementId ?? ''),
    matched_statements: statementRefs(
      response.overallResult === 'ExplicitlyDenied' ? denies : (analysis.identityAnalysis?.allowStatements ?? []),
    ),
  }
}

async function authorize(message) {
  const tried = []
  for (let i = 0; i < deployments.length; i++) {
    const deployment = deployments[i]
    const role = deployment.roles[message.function]
    if (!role) continue
    const policies = role.policies.map((p) => ({ name: p.name, policy: p.policy }))
    let denied = null
    const matched = []
    for (const check of message.checks) {
      const result = await decide({
        policies,
        resourcePolicy: resourcePolicyOf(check.resource, deployment, message.account),
        scps: scpsOf(message, deployment),
        principal: message.principal.replace('${role}', role.role),
        account: message.account,
        action: check.action,
        resource: check.resource,
        context: check.context,
      })
      if (result.decision !== 'Allowed') {
        denied = { ...check, ...result, role: role.role }
        break
      }
      matched.push({ action: check.action, statements: result.matched_statements })
    }
    if (!denied) {
      const key = JSON.stringify([message.function, deployment.id, message.checks])
      if (!allowedCalls.has(key)) {
        allowedCalls.set(key, {
          function: message.function,
          deployment: deployment.id,
          principal: message.principal,
          account: message.account,
          checks: message.checks,
        })
      }
      // Most recently used first: the next call of the same test finds its deployment at once.
      deployments.splice(i, 1)
      deployments.unshift(deployment)
      return { allowed: true, deployment: deployment.id, role: role.role, matched }
    }
    tried.push(denied)
  }
  return { allowed: false, denied: tried[0] ?? null, deployments: deployments.length }
}

// One decision for a role of a deployment, as iam:SimulatePrincipalPolicy gives it: each matched
// statement says whether its policy is the role's inline policy or a managed one.
async function simulate(message, deployment, role) {
  const result = await decide({
    policies: role.policies.map((p) => ({ name: p.name, policy: p.policy })),
    resourcePolicy: resourcePolicyOf(message.resource, deployment, message.account),
    scps: scpsOf(message, deployment),
    principal: `arn:aws:iam::${message.account}:role/${role.role}`,
    account: message.account,
    action: message.action,
    resource: message.resource,
    context: message.context,
  })
  const inline = new Set(role.policies.filter((p) => p.inline).map((p) => p.name))
  const matched = (result.matched_statements ?? []).map((s) => ({ ...s, inline: inline.has(s.policy) }))
  return { ...result, matched_statements: matched, role: role.role, deployment: deployment.id }
}

function statementKey(policy, statement, index) {
  return `${policy.name}#${statement.Sid ?? String(index + 1)}`
}

// The mutation check, by replay: for each statement of each function's role, every call the suite
// made that the role allowed is decided again without that statement. A statement without which
// no call is denied is excess: the suite never needed it.
async function mutations() {
  const byFunction = {}
  for (const call of allowedCalls.values()) {
    ;(byFunction[call.function] ??= []).push(call)
  }
  const out = {}
  for (const [fn, calls] of Object.entries(byFunction)) {
    const needed = {}
    for (const call of calls) {
      const deployment = deployments.find((d) => d.id === call.deployment)
      const role = deployment?.roles[fn]
      if (!role) continue
      role.policies.forEach((policy, p) => {
        policy.policy.Statement.forEach((statement, s) => {
          const key = statementKey(policy, statement, s)
          if (statement.Effect !== 'Allow') return
          needed[key] ??= { calls: 0, example: null }
        })
      })
      for (let p = 0; p < role.policies.length; p++) {
        const statements = role.policies[p].policy.Statement
        for (let s = 0; s < statements.length; s++) {
          if (statements[s].Effect !== 'Allow') continue
          const key = statementKey(role.policies[p], statements[s], s)
          const mutated = role.policies.map((policy, i) =>
            i === p ? { name: policy.name, policy: { ...policy.policy, Statement: statements.filter((_, j) => j !== s) } } : policy,
          )
          for (const check of call.checks) {
            const result = await decide({
              policies: mutated,
              resourcePolicy: resourcePolicyOf(check.resource, deployment, call.account ?? '123456789012'),
              scps: [],
              principal: call.principal.replace('${role}', role.role),
              account: call.account ?? '123456789012',
              action: check.action,
              resource: check.resource,
              context: check.context,
            })
            if (result.decision !== 'Allowed') {
              needed[key].calls += 1
              needed[key].example ??= `${check.action} ${check.resource}`
              break
            }
          }
        }
      }
    }
    out[fn] = { distinct_calls: calls.length, statements: needed }
  }
  return out
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  let answer
  try {
    const message = JSON.parse(line)
    if (message.op === 'deploy') {
      const existing = deployments.findIndex((d) => d.id === message.id)
      if (existing >= 0) deployments.splice(existing, 1)
      deployments.unshift({
        id: message.id,
        roles: message.roles,
        resource_policies: message.resource_policies || {},
        scps: message.scps || [],
        registered: ++registrations,
      })
      answer = { ok: true, deployments: deployments.length }
    } else if (message.op === 'forget') {
      deployments.length = 0
      answer = { ok: true }
    } else if (message.op === 'authorize') {
      answer = await authorize(message)
    } else if (message.op === 'trust') {
      // The identity side is decided apart ("authorize"); here only the role's trust policy, the
      // resource-based policy of a cross-account AssumeRole, which must allow it as well.
      const identityAllows = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] }
      answer = await decide({
        policies: [{ name: 'identity-decided-apart', policy: identityAllows }],
        resourcePolicy: message.trust,
        scps: [],
        principal: message.principal,
        account: message.account,
        action: 'sts:AssumeRole',
        resource: message.role_arn,
        context: message.context,
      })
    } else if (message.op === 'mutations') {
      answer = await mutations()
    } else if (message.op === 'simulate') {
      const deployment = deployments.find((d) => d.id === message.deployment)
      const role = deployment?.roles[message.function]
      answer = role
        ? await simulate(message, deployment, role)
        : { error: `no function ${message.function} in a deployment ${message.deployment}` }
    } else if (message.op === 'simulate_role') {
      let found = null
      for (const deployment of deployments) {
        const role = Object.values(deployment.roles).find((r) => r.role === message.role)
        if (role && (!found || deployment.registered > found.deployment.registered)) found = { deployment, role }
      }
      answer = found ? await simulate(message, found.deployment, found.role) : { no_such_role: true }
    } else {
      answer = { error: `unknown op ${message.op}` }
    }
  } catch (error) {
    answer = { error: String(error && error.stack ? error.stack : error) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
