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
