# Shared by the scripts in this folder: where the local stack lives, how to start and stop it,
# how to talk to it. Sourced, not run.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMULATOR_HOST="127.0.0.1"
EMULATOR_PORT="${MOTO_PORT:-5000}"
EMULATOR_URL="http://${EMULATOR_HOST}:${EMULATOR_PORT}"
# The emulator's DNS server: Route 53's answers for its hosted zones (crates/dr-emulator/moto/dns.py).
DNS_PORT="${DNS_PORT:-5053}"
DNS_RESOLVER="${EMULATOR_HOST}:${DNS_PORT}"
EMULATOR_STATE_DIR="${REPO_ROOT}/.emulator"
VENV="${REPO_ROOT}/.venv"
CHECKOV_VENV="${REPO_ROOT}/.venv-checkov"
LAMBDA_PORT="${LAMBDA_PORT:-9000}"
LAMBDA_URL="http://127.0.0.1:${LAMBDA_PORT}"
# The local Step Functions service (tests/sfn/server.mjs): runs what StartExecution starts.
SFN_PORT="${SFN_PORT:-8083}"
SFN_URL="http://127.0.0.1:${SFN_PORT}"
# One build for everything: the local Lambdas, drctl, dr-emulator and the tests share target/.
BIN_DIR="${REPO_ROOT}/target/debug"
# The local triggers' configuration (template.yaml sets it in AWS): the demo's plan store, its
# plan, and the state machines `dr-emulator triggers` registers in the emulator.
# The demo exports the name of the plan it runs (scripts/demo PLAN).
DEMO_PLAN_NAME="${DEMO_PLAN_NAME:-paris-ireland-prod}"
DEMO_PLAN_STATE_BUCKET="platform-dr-plans-ireland"
# The emulator's account (moto's default), the deployment's AWS::AccountId locally.
DEMO_ACCOUNT_ID="123456789012"
# The region the local deployment stands in: the demo's plan's DR region (scripts/demo exports it).
DEMO_REGION="${DEMO_REGION:-eu-west-1}"
DEMO_STATE_MACHINE_ARN="arn:aws:states:${DEMO_REGION}:123456789012:stateMachine:dr-failover"
DEMO_RESTORE_STATE_MACHINE_ARN="arn:aws:states:${DEMO_REGION}:123456789012:stateMachine:dr-restore-test"
DEMO_ROUND_TRIP_STATE_MACHINE_ARN="arn:aws:states:${DEMO_REGION}:123456789012:stateMachine:dr-round-trip"
DEMO_REPROTECT_STATE_MACHINE_ARN="arn:aws:states:${DEMO_REGION}:123456789012:stateMachine:dr-reprotect"
# The notification topic the local Lambdas publish to (tests and the demo create it and subscribe).
DEMO_NOTIFICATION_TOPIC_ARN="arn:aws:sns:${DEMO_REGION}:123456789012:dr-notifications"
# The local stack's database CA: it signs the local PostgreSQL servers' certificates, and the
# functions verify them against it as they verify RDS's against the shipped RDS CA bundle
# (DR_DB_CA_BUNDLE replaces that bundle; crates/dr-core/src/aws/postgres.rs).
DB_CA_BUNDLE="${EMULATOR_STATE_DIR}/db-ca/ca.pem"

# Makes the local database CA once (its key beside it, ca.key).
ensure_db_ca() {
  [[ -s "${DB_CA_BUNDLE}" ]] && return 0
  mkdir -p "$(dirname "${DB_CA_BUNDLE}")"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=dr-orchestrator local database CA" \
    -keyout "${DB_CA_BUNDLE%.pem}.key" -out "${DB_CA_BUNDLE}.tmp" 2>/dev/null
  mv "${DB_CA_BUNDLE}.tmp" "${DB_CA_BUNDLE}"
}

# Point every AWS client (Rust SDK, boto3, the CLI) at the emulator with throwaway credentials.
use_emulator_env() {
  export AWS_ENDPOINT_URL="${EMULATOR_URL}"
  export AWS_ACCESS_KEY_ID="testing"
  export AWS_SECRET_ACCESS_KEY="testing"
  export AWS_REGION="${DEMO_REGION}"
  export MOTO_PORT="${EMULATOR_PORT}"
  # Where the ASL engine and the restore test's probe hook invoke the Lambdas.
  export AWS_ENDPOINT_URL_LAMBDA="${LAMBDA_URL}"
  # Step Functions: the local service that runs executions (moto's records them and runs none).
  export AWS_ENDPOINT_URL_SFN="${SFN_URL}"
  # Where DNS questions go (the product's DNS verification, the tests).
  export DR_DNS_RESOLVER="${DNS_RESOLVER}"
  # The CA the local database servers' certificates chain to (and its key, to sign them).
  ensure_db_ca
  export DR_DB_CA_BUNDLE="${DB_CA_BUNDLE}"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

emulator_is_up() {
  curl -fsS -o /dev/null --max-time 2 "${EMULATOR_URL}/moto-api/" 2>/dev/null
}

stepfunctions_are_up() {
  curl -fsS -o /dev/null --max-time 2 "${SFN_URL}/" 2>/dev/null
}

lambdas_are_up() {
  curl -fsS -o /dev/null --max-time 2 "${LAMBDA_URL}/" 2>/dev/null
}

# A virtualenv with a requirements file installed, once per change of that file.
#   install_venv VENV REQUIREMENTS
install_venv() {
  local venv="$1" requirements="$2"
  local stamp="${venv}/.requirements.sha256"
  local wanted
  wanted="$(sha256sum "${requirements}" | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
    return 0
  fi
  log "installing ${requirements#"${REPO_ROOT}/"} into ${venv}"
  python3 -m venv "${venv}"
  "${venv}/bin/pip" install --quiet --disable-pip-version-check -r "${requirements}"
  echo "${wanted}" > "${stamp}"
}

# Every Python tool (scripts/requirements.txt) into .venv.
install_tools() {
  install_venv "${VENV}" "${REPO_ROOT}/scripts/requirements.txt"
}

# checkov (scripts/requirements-checkov.txt) into its own .venv-checkov: its pins conflict with .venv's.
install_checkov() {
  install_venv "${CHECKOV_VENV}" "${REPO_ROOT}/scripts/requirements-checkov.txt"
}

# Both templates scanned by checkov, offline: 0 failed, every skip justified in the resource's
# Metadata (checkov.skip[].comment).
run_checkov() {
  BC_SKIP_MAPPING=TRUE "${CHECKOV_VENV}/bin/checkov" --framework cloudformation --skip-download --compact --quiet \
    -f "${REPO_ROOT}/template.yaml" -f "${REPO_ROOT}/template-us-east-1.yaml" -f "${REPO_ROOT}/member-role.yaml"
}

# The ASL engine (aws-local-stepfunctions) and asl-validator, pinned in tests/sfn/package-lock.json.
install_sfn_runner() {
  if [[ -d "${REPO_ROOT}/tests/sfn/node_modules/aws-local-stepfunctions" ]]; then
    return 0
  fi
  log "installing aws-local-stepfunctions and asl-validator (npm ci in tests/sfn)"
  (cd "${REPO_ROOT}/tests/sfn" && npm ci --no-audit --no-fund --silent)
}

# The local stack's IAM evaluator (@cloud-copilot/iam-simulate, pinned in
# crates/dr-emulator/iam/package-lock.json): a test-time tool of the emulator, never shipped.
install_iam_evaluator() {
  if [[ -d "${REPO_ROOT}/crates/dr-emulator/iam/node_modules/@cloud-copilot/iam-simulate" ]]; then
    return 0
  fi
  log "installing the IAM evaluator (npm ci in crates/dr-emulator/iam)"
  (cd "${REPO_ROOT}/crates/dr-emulator/iam" && npm ci --no-audit --no-fund --silent)
}

# Debian's packages the suite needs, those the machine lacks installed in one apt-get (as root,
# or with sudo): postgresql for the real database pair (crates/dr-emulator/src/postgres.rs starts
# the servers itself); chromium and poppler-utils (pdftotext) for the posture page as a person
# sees it (dr_tests::chromium: a headless screenshot and a printed PDF read back).
#   install_debian_packages PACKAGE...
install_debian_packages() {
  local package missing=()
  for package in "$@"; do
    case "${package}" in
      postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=("${package}") ;;
      chromium) [[ -x /usr/bin/chromium ]] || missing+=("${package}") ;;
      poppler-utils) command -v pdftotext > /dev/null || missing+=("${package}") ;;
      *) log "install_debian_packages: no probe for ${package}"; return 1 ;;
    esac
  done
  (( ${#missing[@]} )) || return 0
  log "installing Debian's ${missing[*]}"
  local sudo=""
  [[ "$(id -u)" == "0" ]] || sudo="sudo"
  ${sudo} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq "${missing[@]}" > /dev/null
}

# The workspace's own crates compiled by clippy-driver from here on, as `cargo clippy` runs it
# (RUSTC_WORKSPACE_WRAPPER; CLIPPY_ARGS holds `cargo clippy -- -D warnings`' arguments, separated
# as cargo-clippy separates them): clippy's lints fail the build that the tests then run, and the
# dependencies are compiled once, for both. Builds of other programs (the release build) leave
# these unset.
lint_while_building() {
  # Found or refused: an empty wrapper would be ignored by cargo, and the lints silently skipped.
  if ! RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"; then
    log "clippy-driver not found: rustup component add clippy"
    return 1
  fi
  export RUSTC_WORKSPACE_WRAPPER
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
}

# The deployable build, as `sam build` runs it (its rust-cargolambda workflow runs exactly this in
# the repository, with Zig from .venv), so that a `sam build` after it finds it done.
release_build() {
  (cd "${REPO_ROOT}" && env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS PATH="${VENV}/bin:${PATH}" \
    cargo lambda build --release --bin dr-lambda "$@")
}

# Every binary of the workspace (functions, drctl, dr-emulator, benches) in target/debug: the same
# package selection as `cargo test --workspace`, so that the two share every compiled dependency.
build_binaries() {
  log "building the workspace binaries (functions, drctl, dr-emulator) into ${BIN_DIR}"
  (cd "${REPO_ROOT}" && cargo build --quiet --workspace --bins)
}

# Starts a background process of the local stack, records its pid, and waits for `is_up`.
#   start_background NAME IS_UP_FUNCTION COMMAND...
start_background() {
  local name="$1" is_up="$2"
  shift 2
  mkdir -p "${EMULATOR_STATE_DIR}"
  # setsid: the process outlives the script that started it and is stopped by `stop_background`.
  setsid "$@" > "${EMULATOR_STATE_DIR}/${name}.log" 2>&1 < /dev/null &
  echo $! > "${EMULATOR_STATE_DIR}/${name}.pid"
  for _ in $(seq 1 150); do
    if "${is_up}"; then
      echo "started"
      return 0
    fi
    sleep 0.2
  done
  echo "${name} did not start; see ${EMULATOR_STATE_DIR}/${name}.log" >&2
  return 1
}

# Stops what start_background started, only if the recorded pid still runs that program (a
# stale pid file must never kill an unrelated process that reused the pid).
#   stop_background NAME PATTERN      PATTERN: a string the process's command line contains
stop_background() {
  local name="$1" pattern="$2"
  local pidfile="${EMULATOR_STATE_DIR}/${name}.pid"
  [[ -f "${pidfile}" ]] || return 0
  local pid
  pid="$(cat "${pidfile}")"
  rm -f "${pidfile}"
  if [[ "${pid}" =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "${pattern}"; then
    # The whole session: the Lambda service runs the function binaries as its children.
    kill -- "-${pid}" 2>/dev/null || kill "${pid}" 2>/dev/null || true
    log "${name} stopped"
  fi
}

# The services a script starts itself are stopped when it exits; ones that already ran are left.
#   start_services emulator lambdas
STARTED_SERVICES=()
start_services() {
  local service
  for service in "$@"; do
    if [[ "$("${REPO_ROOT}/scripts/${service}" start | tail -n 1)" == "started" ]]; then
      STARTED_SERVICES+=("${service}")
    fi
  done
}

stop_started_services() {
  local service
  for service in ${STARTED_SERVICES[@]+"${STARTED_SERVICES[@]}"}; do
    "${REPO_ROOT}/scripts/${service}" stop || true
  done
  STARTED_SERVICES=()
}

# Invokes a local function as `aws lambda invoke` would: prints its answer; a function error (the
# `X-Amz-Function-Error` header) prints the error payload and fails.
#   invoke_lambda FUNCTION PAYLOAD_FILE
invoke_lambda() {
  local headers status
  headers="$(mktemp)"
  status=0
  curl -fsS -D "${headers}" --data-binary "@$2" "${LAMBDA_URL}/2015-03-31/functions/$1/invocations" || status=$?
  echo
  if grep -qi '^x-amz-function-error' "${headers}"; then
    status=1
  fi
  rm -f "${headers}"
  return "${status}"
}
