# Shared by the scripts in this folder: where the emulator lives and how to talk to it.
# Sourced, not run.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMULATOR_HOST="127.0.0.1"
EMULATOR_PORT="${MOTO_PORT:-5000}"
EMULATOR_URL="http://${EMULATOR_HOST}:${EMULATOR_PORT}"
EMULATOR_STATE_DIR="${REPO_ROOT}/.emulator"
VENV="${REPO_ROOT}/.venv"
LAMBDA_PORT="${LAMBDA_PORT:-9000}"
LAMBDA_URL="http://127.0.0.1:${LAMBDA_PORT}"
LAMBDA_TARGET_DIR="${REPO_ROOT}/target/lambda"
# The local triggers' configuration (template.yaml sets it in AWS): the demo's plan store, its
# plan, and the failover state machine `drctl estate triggers` registers in the emulator.
DEMO_PLAN_NAME="paris-ireland-prod"
DEMO_PLAN_STATE_BUCKET="platform-dr-plans-ireland"
DEMO_STATE_MACHINE_ARN="arn:aws:states:eu-west-1:123456789012:stateMachine:dr-failover"
DEMO_RESTORE_STATE_MACHINE_ARN="arn:aws:states:eu-west-1:123456789012:stateMachine:dr-restore-test"

# Point every AWS client (Rust SDK, boto3, the CLI) at the emulator with throwaway credentials.
use_emulator_env() {
  export AWS_ENDPOINT_URL="${EMULATOR_URL}"
  export AWS_ACCESS_KEY_ID="testing"
  export AWS_SECRET_ACCESS_KEY="testing"
  export AWS_REGION="eu-west-1"
  export MOTO_PORT="${EMULATOR_PORT}"
  # Where the ASL engine invokes the Lambdas: cargo lambda watch (scripts/lambdas).
  export AWS_ENDPOINT_URL_LAMBDA="${LAMBDA_URL}"
}

emulator_is_up() {
  curl -fsS -o /dev/null --max-time 2 "${EMULATOR_URL}/moto-api/" 2>/dev/null
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Every Python tool (scripts/requirements.txt) into .venv, once per change of that file.
install_tools() {
  local requirements="${REPO_ROOT}/scripts/requirements.txt"
  local stamp="${VENV}/.requirements.sha256"
  local wanted
  wanted="$(sha256sum "${requirements}" | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
    return 0
  fi
  log "installing the Python tools (scripts/requirements.txt) into ${VENV}"
  python3 -m venv "${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check -r "${requirements}"
  echo "${wanted}" > "${stamp}"
}


# The ASL engine (aws-local-stepfunctions) and asl-validator, pinned in tests/sfn/package-lock.json.
install_sfn_runner() {
  if [[ -d "${REPO_ROOT}/tests/sfn/node_modules/aws-local-stepfunctions" ]]; then
    return 0
  fi
  log "installing aws-local-stepfunctions and asl-validator (npm ci in tests/sfn)"
  (cd "${REPO_ROOT}/tests/sfn" && npm ci --no-audit --no-fund --silent)
}

lambdas_are_up() {
  curl -s -o /dev/null --max-time 2 "${LAMBDA_URL}/" 2>/dev/null
}
