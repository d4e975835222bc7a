# Shared by the scripts in this folder: where the emulator lives and how to talk to it.
# Sourced, not run.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VERSION="5.2.1"
EMULATOR_HOST="127.0.0.1"
EMULATOR_PORT="${MOTO_PORT:-5000}"
EMULATOR_URL="http://${EMULATOR_HOST}:${EMULATOR_PORT}"
EMULATOR_STATE_DIR="${REPO_ROOT}/.emulator"
VENV="${REPO_ROOT}/.venv"

# Point every AWS client (Rust SDK, boto3, the CLI) at the emulator with throwaway credentials.
use_emulator_env() {
  export AWS_ENDPOINT_URL="${EMULATOR_URL}"
  export AWS_ACCESS_KEY_ID="testing"
  export AWS_SECRET_ACCESS_KEY="testing"
  export AWS_REGION="eu-west-1"
  export MOTO_PORT="${EMULATOR_PORT}"
}

emulator_is_up() {
  curl -fsS -o /dev/null --max-time 2 "${EMULATOR_URL}/moto-api/" 2>/dev/null
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

CFN_LINT_VERSION="1.51.0"

# Linters for the SAM template, into the same venv as the emulator.
install_linters() {
  if [[ -x "${VENV}/bin/cfn-lint" ]] && [[ "$("${VENV}/bin/cfn-lint" --version 2>/dev/null)" == *"${CFN_LINT_VERSION}"* ]]; then
    return 0
  fi
  log "installing cfn-lint==${CFN_LINT_VERSION} into ${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==${CFN_LINT_VERSION}"
}

CARGO_LAMBDA_VERSION="1.9.2"
LAMBDA_PORT="${LAMBDA_PORT:-9000}"
LAMBDA_URL="http://127.0.0.1:${LAMBDA_PORT}"

# cargo-lambda (from PyPI) into the venv; `cargo lambda watch` serves the real Lambda binaries.
install_cargo_lambda() {
  if [[ -x "${VENV}/bin/cargo-lambda" ]] && [[ "$("${VENV}/bin/cargo-lambda" lambda --version 2>/dev/null)" == *"${CARGO_LAMBDA_VERSION}"* ]]; then
    return 0
  fi
  log "installing cargo-lambda==${CARGO_LAMBDA_VERSION} into ${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==${CARGO_LAMBDA_VERSION}"
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
