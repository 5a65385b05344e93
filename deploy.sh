#!/usr/bin/env bash
# deploy.sh: puts market-streamer on a small Linux box (a 512 MB Lightsail nano) over SSH.
# The image is built HERE (compiling Rust needs far more than 512 MB), shipped with
# `docker save | gzip | ssh docker load`, and run with docker compose next to your .env.
# Run `./deploy.sh --help` for the commands and settings. Works with macOS's bash 3.2.
#
# Remote command lines are built here on purpose, from validated values, and sent whole:
# shellcheck disable=SC2029
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="./deploy.sh"

# Names shared with docker-compose.yml and the Dockerfile.
IMAGE_REPO="market-streamer"
SERVICE="market-streamer"
HEALTH_URL_IN_CONTAINER="http://127.0.0.1:8080"
VERSION_LABEL="org.opencontainers.image.version"
# docker image inspect --format for that label, quoted for the remote shell.
LABEL_FMT='"{{ index .Config.Labels \"org.opencontainers.image.version\" }}"'
DAEMON_FMT='"{{.ServerVersion}}"'

usage() {
  cat <<EOF
Usage: $PROG [MODE] [--dry-run] HOST

HOST is what ssh takes, e.g. ec2-user@203.0.113.10 (Amazon Linux) or ubuntu@203.0.113.10.

Modes (default: deploy):
  (none)          build the image for linux/amd64 here, ship it, upload docker-compose.yml and
                  .env (mode 600), docker compose up -d, wait for /health, print a summary
  --config-only   upload docker-compose.yml and .env and restart with them; no build, no upload
                  of the image (after editing .env)
  --rollback      switch back to the image that ran before the last deploy (run it again to undo)
  --bootstrap     install Docker, the compose plugin and swap on a fresh Amazon Linux 2023 or
                  Ubuntu box (infrastructure/bootstrap.sh, run with sudo)
  --logs          follow the service's logs (Ctrl-C stops following; the service keeps running)
  --login         run \`market-streamer login\` in the running container (weekly Schwab login)
  --status        container state, image versions and a health check
  --dry-run       print every step and command without running any of them
  -h, --help      this text

Settings (environment):
  SSH_KEY         private key for ssh (ssh -i), e.g. ~/.ssh/lightsail.pem
  SSH_PORT        ssh port (default 22)
  SSH_OPTS        more ssh options, e.g. "-o ProxyJump=bastion"
  ENV_FILE        settings file to upload (default: .env next to this script)
  REMOTE_DIR      folder on the box for docker-compose.yml and .env (default: market-streamer,
                  in the login user's home)
  REMOTE_DOCKER   docker command on the box (default: docker; "sudo docker" if the user is not
                  in the docker group)
  PLATFORM        image platform (default: linux/amd64, what Lightsail runs)
  IMAGE_VERSION   version tag and label of the image (default: the git commit, plus a hash of
                  uncommitted changes)
  DEPLOY_HEALTH_WAIT  seconds to wait for /health to answer (default 120)
  DEPLOY_HEALTH_POLL  seconds between health checks while waiting (default 3)
  LOG_TAIL        lines of history --logs shows first (default 200)
  SWAP_SIZE_MB    swap file size --bootstrap creates when the box has none (default 1024)
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }

# Shell-quotes one word for display (only when needed, so commands stay readable).
q() {
  case "$1" in
    '' | *[!A-Za-z0-9_./:=@%+,~-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
  esac
}

# Prints a command the way a shell would read it, prefixed with "+ ".
show() {
  local out="" word
  for word in "$@"; do out="$out $(q "$word")"; done
  printf '+%s\n' "$out"
}

# ---------------------------------------------------------------------------------------
# Arguments and settings
# ---------------------------------------------------------------------------------------

MODE=deploy
DRY_RUN=0
HOST=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config-only) MODE=config-only ;;
    --rollback) MODE=rollback ;;
    --bootstrap) MODE=bootstrap ;;
    --logs) MODE=logs ;;
    --login) MODE=login ;;
    --status) MODE=status ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option $1 (see $PROG --help)" ;;
    *)
      [ -z "$HOST" ] || die "one HOST only (got $HOST and $1)"
      HOST="$1"
      ;;
  esac
  shift
done
[ -n "$HOST" ] || {
  usage >&2
  die "HOST is missing, e.g. $PROG ec2-user@203.0.113.10"
}
case "$HOST" in
  -* | *[[:space:]]*) die "HOST ($HOST) must look like user@address" ;;
esac

ENV_FILE="${ENV_FILE:-$ROOT/.env}"
COMPOSE_SRC="$ROOT/docker-compose.yml"
BOOTSTRAP_SRC="$ROOT/infrastructure/bootstrap.sh"
REMOTE_DIR="${REMOTE_DIR:-market-streamer}"
REMOTE_DOCKER="${REMOTE_DOCKER:-docker}"
PLATFORM="${PLATFORM:-linux/amd64}"
HEALTH_WAIT="${DEPLOY_HEALTH_WAIT:-120}"
HEALTH_POLL="${DEPLOY_HEALTH_POLL:-3}"
LOG_TAIL="${LOG_TAIL:-200}"
SWAP_SIZE_MB="${SWAP_SIZE_MB:-1024}"

# These go into remote command lines unquoted, so only plain characters are allowed.
case "$REMOTE_DIR" in
  '' | *[!A-Za-z0-9_./~-]*) die "REMOTE_DIR ($REMOTE_DIR) may hold only letters, digits and _ . / ~ -" ;;
esac
case "$REMOTE_DOCKER" in
  '' | *[!A-Za-z0-9_./\ -]*) die "REMOTE_DOCKER ($REMOTE_DOCKER) may hold only letters, digits, spaces and _ . / -" ;;
esac
case "$PLATFORM" in
  linux/amd64) REMOTE_ARCH=x86_64 ;;
  linux/arm64) REMOTE_ARCH=aarch64 ;;
  *) die "PLATFORM ($PLATFORM) must be linux/amd64 or linux/arm64" ;;
esac
for pair in "DEPLOY_HEALTH_WAIT=$HEALTH_WAIT" "LOG_TAIL=$LOG_TAIL" "SWAP_SIZE_MB=$SWAP_SIZE_MB"; do
  case "${pair#*=}" in
    '' | *[!0-9]*) die "${pair%%=*} (${pair#*=}) must be a whole number" ;;
  esac
done
case "$HEALTH_POLL" in
  '' | *[!0-9.]* | *.*.*) die "DEPLOY_HEALTH_POLL ($HEALTH_POLL) must be a number of seconds" ;;
esac

# ssh options: BatchMode never hangs on a password prompt; accept-new trusts a new box's
# host key on first contact and refuses a changed one later. SSH_OPTS come first and win.
SSH_ARGS=()
if [ -n "${SSH_OPTS:-}" ]; then
  read -r -a SSH_ARGS <<<"$SSH_OPTS"
fi
if [ -n "${SSH_KEY:-}" ]; then
  [ -r "$SSH_KEY" ] || [ "$DRY_RUN" = 1 ] || die "SSH_KEY ($SSH_KEY) is not a readable file"
  SSH_ARGS+=(-i "$SSH_KEY" -o IdentitiesOnly=yes)
fi
if [ -n "${SSH_PORT:-}" ]; then
  SSH_ARGS+=(-p "$SSH_PORT")
fi
SSH_ARGS+=(-o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15
  -o ServerAliveCountMax=4 -o StrictHostKeyChecking=accept-new)

# How an ssh call is shown: the options that identify the box, not the fixed ones.
SSH_SHOWN="ssh"
[ -z "${SSH_KEY:-}" ] || SSH_SHOWN="$SSH_SHOWN -i $(q "$SSH_KEY")"
[ -z "${SSH_PORT:-}" ] || SSH_SHOWN="$SSH_SHOWN -p $(q "$SSH_PORT")"
SSH_SHOWN="$SSH_SHOWN $(q "$HOST")"

D="$REMOTE_DOCKER"
IN_DIR="cd $REMOTE_DIR &&"

# ---------------------------------------------------------------------------------------
# Running things, here and on the box
# ---------------------------------------------------------------------------------------

# Runs a command here (or only prints it with --dry-run).
run() {
  show "$@"
  [ "$DRY_RUN" = 1 ] || "$@"
}

# Runs a shell command line on the box.
remote() {
  printf '+ %s %s\n' "$SSH_SHOWN" "$(q "$1")"
  [ "$DRY_RUN" = 1 ] || ssh "${SSH_ARGS[@]}" "$HOST" "$1"
}

# Runs a shell command line on the box and prints its output (nothing with --dry-run).
remote_output() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+ %s %s\n' "$SSH_SHOWN" "$(q "$1")"
    return 0
  fi
  ssh "${SSH_ARGS[@]}" "$HOST" "$1"
}

# Uploads a local file to the box with the given mode. The file is created under a
# temporary name with umask 077 (so never readable by others, not even for a moment), given
# its mode, and renamed over the old one.
upload() {
  local src="$1" dest="$2" mode="$3"
  local cmd="umask 077 && cat > $dest.upload && chmod $mode $dest.upload && mv -f $dest.upload $dest"
  printf '+ %s %s < %s\n' "$SSH_SHOWN" "$(q "$cmd")" "$(q "$src")"
  [ "$DRY_RUN" = 1 ] || ssh "${SSH_ARGS[@]}" "$HOST" "$cmd" <"$src"
}

# One SSH connection per run: a master connection is opened once and every later ssh call
# (including the image upload) runs as a channel inside it. Closed when the script exits.
CONTROL_DIR=""
open_connection() {
  [ "$DRY_RUN" = 0 ] || return 0
  # Under /tmp, not $TMPDIR: a socket path must stay under 104 bytes on macOS.
  CONTROL_DIR="$(mktemp -d /tmp/deploy-ssh.XXXXXX)"
  trap close_connection EXIT
  if ! ssh "${SSH_ARGS[@]}" -o ControlMaster=yes -o "ControlPath=$CONTROL_DIR/%C" \
    -o ControlPersist=600 -f -N "$HOST" </dev/null >/dev/null 2>"$CONTROL_DIR/connect.log"; then
    sed 's/^/    ssh: /' "$CONTROL_DIR/connect.log" >&2
    die "cannot connect to $HOST over ssh. Check HOST, SSH_KEY (ssh -i), SSH_PORT, and that the
  firewall lets your address reach port ${SSH_PORT:-22}"
  fi
  # If the master is gone, ControlMaster=no makes ssh connect on its own.
  SSH_ARGS+=(-o ControlMaster=no -o "ControlPath=$CONTROL_DIR/%C")
}

close_connection() {
  if [ -n "$CONTROL_DIR" ]; then
    ssh "${SSH_ARGS[@]}" -O exit "$HOST" >/dev/null 2>&1 || true
    rm -rf "$CONTROL_DIR"
    CONTROL_DIR=""
  fi
}

need_local() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      if [ "$DRY_RUN" = 1 ]; then
        warn "$tool is not installed here; a real run needs it"
      else
        die "$tool is not installed here: install it first (the image is built on this machine)"
      fi
    fi
  done
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

# ---------------------------------------------------------------------------------------
# Checks of .env (never printed: it holds secrets)
# ---------------------------------------------------------------------------------------

# The value NAME has in ENV_FILE (the last assignment wins; quotes removed; empty if unset).
env_value() {
  local name="$1" line value=""
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line#export }"
    case "$line" in
      "$name="*) value="${line#*=}" ;;
    esac
  done <"$ENV_FILE"
  value="${value%$'\r'}"
  value="${value%"${value##*[![:space:]]}"}"
  case "$value" in
    \"*\") value="${value#\"}" value="${value%\"}" ;;
    \'*\') value="${value#\'}" value="${value%\'}" ;;
  esac
  printf '%s' "$value"
}

check_env_file() {
  [ -f "$ENV_FILE" ] || die "no settings file at $ENV_FILE: create it with
    cp env.template .env && chmod 600 .env
  fill in the secrets, and run again (or point ENV_FILE at your file)"
  [ -r "$ENV_FILE" ] || die "$ENV_FILE is not readable"
  local perms
  # ls, not stat or find -perm, whose flags differ between macOS and Linux.
  # shellcheck disable=SC2012
  perms="$(ls -ld "$ENV_FILE" | cut -c5-10)"
  case "$perms" in
    *r* | *w*) warn "$ENV_FILE is readable by other users here (chmod 600 $ENV_FILE); it holds secrets" ;;
  esac

  local mode missing="" name
  mode="$(env_value SCHWAB_MODE | tr '[:upper:]' '[:lower:]')"
  if [ "$mode" != simulated ]; then
    for name in SCHWAB_CLIENT_ID SCHWAB_CLIENT_SECRET; do
      [ -n "$(env_value "$name")" ] || missing="$missing $name"
    done
    [ -z "$missing" ] || die "required secret(s) unset in $ENV_FILE:$missing.
  Fill in your Schwab app's App Key and Secret (developer.schwab.com), or set
  SCHWAB_MODE=simulated to deploy the built-in demo market on purpose"
  fi

  local db token_store
  db="$(env_value DATABASE_URL)"
  case "$db" in
    *'[YOUR-PASSWORD]'* | *':PASSWORD@'* | *PROJECTREF*)
      die "DATABASE_URL in $ENV_FILE still holds a placeholder (PASSWORD / PROJECTREF): paste the real connection string" ;;
  esac
  token_store="$(env_value TOKEN_STORE | tr '[:upper:]' '[:lower:]')"
  if [ "$token_store" = database ]; then
    case "$db" in
      postgres://* | postgresql://*) ;;
      *) die "TOKEN_STORE=database needs a postgres:// DATABASE_URL in $ENV_FILE" ;;
    esac
  fi

  # Docker kills the container stop_grace_period after SIGTERM; the drain must fit in it.
  local grace stop_grace
  grace="$(env_value SHUTDOWN_GRACE)"
  grace="${grace%s}"
  stop_grace="$(sed -n 's/^[[:space:]]*stop_grace_period:[[:space:]]*\([0-9][0-9]*\)s[[:space:]]*$/\1/p' "$COMPOSE_SRC" | head -n1)"
  [ -n "$stop_grace" ] || die "no stop_grace_period (in seconds, e.g. 12s) found in $COMPOSE_SRC"
  if [ -n "$grace" ] && ! awk -v g="$grace" -v s="$stop_grace" 'BEGIN { exit !(g + 0 < s + 0) }'; then
    die "SHUTDOWN_GRACE=$grace in $ENV_FILE is not below docker-compose.yml's stop_grace_period (${stop_grace}s): Docker would kill the service mid-drain; lower it or raise stop_grace_period"
  fi
  if [ -n "$(env_value HEALTH_ADDR)" ]; then
    warn "HEALTH_ADDR in $ENV_FILE is ignored: docker-compose.yml sets 0.0.0.0:8080 inside the container"
  fi
}

# ---------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------

# The version tag: IMAGE_VERSION, or the commit plus a hash of uncommitted changes, so the
# same source gives the same tag and a redeploy of it ships nothing.
image_version() {
  if [ -n "${IMAGE_VERSION:-}" ]; then
    case "$IMAGE_VERSION" in
      current | previous | latest) die "IMAGE_VERSION cannot be '$IMAGE_VERSION' (a tag deploy.sh manages)" ;;
      [A-Za-z0-9_]*) ;;
      *) die "IMAGE_VERSION ($IMAGE_VERSION) must start with a letter, digit or _" ;;
    esac
    case "$IMAGE_VERSION" in
      *[!A-Za-z0-9_.-]*) die "IMAGE_VERSION ($IMAGE_VERSION) may hold only letters, digits and _ . -" ;;
    esac
    printf '%s' "$IMAGE_VERSION"
    return
  fi
  if command -v git >/dev/null 2>&1 && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    local version
    version="$(git -C "$ROOT" rev-parse --short=12 HEAD)"
    if [ -n "$(git -C "$ROOT" status --porcelain)" ]; then
      version="$version-dirty.$(
        {
          git -C "$ROOT" diff HEAD --binary
          git -C "$ROOT" ls-files --others --exclude-standard
          (cd "$ROOT" && git ls-files -z --others --exclude-standard | xargs -0 cat 2>/dev/null) || true
        } | sha256 | cut -c1-10
      )"
    fi
    printf '%s' "$version"
  else
    printf 'build-%s' "$(date -u +%Y%m%d%H%M%S)"
  fi
}

# Can we reach the box, is Docker there and usable, and which image runs now?
REMOTE_CURRENT=""
check_box() {
  step "Check $HOST (ssh, Docker, compose)"
  open_connection
  # One NAME=value line each: architecture, compose and daemon versions (empty when missing
  # or not allowed), version of the running image (empty when there is none).
  local cmd="echo \"arch=\$(uname -m)\"; echo \"compose=\$($D compose version --short 2>/dev/null)\"; echo \"daemon=\$($D info --format $DAEMON_FMT 2>/dev/null)\"; echo \"current=\$($D image inspect --format $LABEL_FMT $IMAGE_REPO:current 2>/dev/null)\""
  if [ "$DRY_RUN" = 1 ]; then
    remote_output "$cmd"
    return 0
  fi
  local out arch compose daemon
  out="$(remote_output "$cmd")" || die "cannot run commands on $HOST over ssh (see the error above)"
  arch="$(printf '%s\n' "$out" | sed -n 's/^arch=//p')"
  compose="$(printf '%s\n' "$out" | sed -n 's/^compose=//p')"
  daemon="$(printf '%s\n' "$out" | sed -n 's/^daemon=//p')"
  REMOTE_CURRENT="$(printf '%s\n' "$out" | sed -n 's/^current=//p')"
  [ "$REMOTE_CURRENT" != "<no value>" ] || REMOTE_CURRENT=""
  case "$compose" in '') die "Docker or its compose plugin is missing on $HOST: run $PROG --bootstrap $HOST first" ;; esac
  case "$daemon" in '') die "cannot use the Docker daemon on $HOST as this user: after --bootstrap, the docker group applies from the next login (just run again); otherwise use REMOTE_DOCKER='sudo docker'" ;; esac
  [ "$arch" = "$REMOTE_ARCH" ] || die "$HOST is $arch but PLATFORM is $PLATFORM: set PLATFORM=linux/$([ "$arch" = aarch64 ] && echo arm64 || echo amd64)"
  info "$HOST: $arch, Docker $daemon, compose $compose, running image: ${REMOTE_CURRENT:-none yet}"
}

build_image() {
  step "Build $IMAGE for $PLATFORM here (BuildKit; dependencies cached between builds)"
  run env DOCKER_BUILDKIT=1 docker build --platform "$PLATFORM" \
    --tag "$IMAGE" --label "$VERSION_LABEL=$VERSION" "$ROOT"
  if [ "$DRY_RUN" = 0 ]; then
    local size
    size="$(docker image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || true)"
    case "$size" in
      '' | *[!0-9]*) ;;
      *) info "image size: $((size / 1000000)) MB" ;;
    esac
  fi
}

ship_image() {
  step "Ship $IMAGE to $HOST"
  if [ "$DRY_RUN" = 0 ] && [ "$REMOTE_CURRENT" = "$VERSION" ]; then
    info "$HOST already runs $VERSION: nothing to send"
    return 0
  fi
  printf '+ docker save %s | gzip -1 | %s %s\n' "$(q "$IMAGE")" "$SSH_SHOWN" "$(q "gunzip | $D load")"
  if [ "$DRY_RUN" = 0 ]; then
    docker save "$IMAGE" | gzip -1 | ssh "${SSH_ARGS[@]}" "$HOST" "gunzip | $D load"
  fi
  # The running image becomes :previous (for --rollback), the new one :current; the version
  # tag is dropped and images no tag points to any more are removed.
  remote "if $D image inspect $IMAGE_REPO:current >/dev/null 2>&1; then $D tag $IMAGE_REPO:current $IMAGE_REPO:previous; fi && $D tag $IMAGE $IMAGE_REPO:current && $D rmi $IMAGE >/dev/null && $D image prune -f >/dev/null"
  IMAGE_CHANGED=1
}

upload_config() {
  step "Upload docker-compose.yml and $(basename "$ENV_FILE") (as .env, mode 600) to $HOST:$REMOTE_DIR"
  remote "umask 077 && mkdir -p $REMOTE_DIR"
  upload "$COMPOSE_SRC" "$REMOTE_DIR/docker-compose.yml" 644
  upload "$ENV_FILE" "$REMOTE_DIR/.env" 600
}

# Set when this run put another image behind market-streamer:current.
IMAGE_CHANGED=0

start_service() {
  if [ "$IMAGE_CHANGED" = 1 ]; then
    step "Start the service on the new image (docker compose up -d --force-recreate)"
    remote "$IN_DIR $D compose up -d --remove-orphans --force-recreate"
  else
    step "Start the service (docker compose up -d: recreated only if its settings changed)"
    remote "$IN_DIR $D compose up -d --remove-orphans"
  fi
}

HEALTH_STATE="not checked"
HEALTH_CMD="$IN_DIR $D compose exec -T $SERVICE market-streamer probe --url $HEALTH_URL_IN_CONTAINER --timeout 5"

wait_healthy() {
  step "Wait until /health answers on the box (up to ${HEALTH_WAIT}s)"
  if [ "$DRY_RUN" = 1 ]; then
    remote "$HEALTH_CMD"
    info "(repeated every ${HEALTH_POLL}s until it answers OK or WARNING)"
    return 0
  fi
  printf '+ %s %s\n' "$SSH_SHOWN" "$(q "$HEALTH_CMD")"
  local started now out rc first last=""
  started="$(date +%s)"
  while :; do
    if out="$(ssh "${SSH_ARGS[@]}" "$HOST" "$HEALTH_CMD" 2>&1)"; then rc=0; else rc=$?; fi
    first="$(printf '%s\n' "$out" | head -n1)"
    # An answer is the probe's report saying OK (exit 0) or WARNING (exit 1). Exit 1 with
    # anything else is docker compose failing, e.g. while the container is restarting.
    case "$rc:$first" in
      0:OK*)
        printf '%s\n' "$out" | sed 's/^/    /'
        HEALTH_STATE=OK
        return 0
        ;;
      1:WARNING*)
        printf '%s\n' "$out" | sed 's/^/    /'
        HEALTH_STATE=WARNING
        warn "the service runs but reports a warning (see above); if it asks for a login, run $PROG --login $HOST"
        return 0
        ;;
      2:CRITICAL*)
        # Up and answering, but no data without Schwab tokens (a first deploy during market
        # hours): waiting would not help, the login does.
        if printf '%s\n' "$out" | grep -q 'browser login'; then
          printf '%s\n' "$out" | sed 's/^/    /'
          HEALTH_STATE="CRITICAL until the Schwab login"
          warn "the service is up and waits for a Schwab login: run $PROG --login $HOST now"
          return 0
        fi
        ;;
    esac
    # Progress: each new first line of a not-yet-healthy answer is shown once.
    if [ "$first" != "$last" ]; then
      last="$first"
      info "not yet (exit $rc): $first"
    fi
    now="$(date +%s)"
    if [ $((now - started)) -ge "$HEALTH_WAIT" ]; then
      printf '%s\n' "$out" | sed 's/^/    /'
      step "Last log lines"
      remote "$IN_DIR $D compose logs --no-color --tail 40 $SERVICE" || true
      die "no healthy answer from /health within ${HEALTH_WAIT}s (last exit code $rc).
  Read the logs above; fix .env and run $PROG --config-only $HOST, or go back with $PROG --rollback $HOST"
    fi
    sleep "$HEALTH_POLL"
  done
}

summary() {
  step "Summary"
  # Versions of :current and :previous (NAME=version lines), then the compose status table.
  local cmd="for t in current previous; do echo \"\$t=\$($D image inspect --format $LABEL_FMT $IMAGE_REPO:\$t 2>/dev/null)\"; done; $IN_DIR $D compose ps"
  if [ "$DRY_RUN" = 1 ]; then
    remote_output "$cmd"
    return 0
  fi
  local out current previous
  out="$(remote_output "$cmd" 2>&1)" || true
  current="$(printf '%s\n' "$out" | sed -n 's/^current=//p')"
  previous="$(printf '%s\n' "$out" | sed -n 's/^previous=//p')"
  case "$current" in '' | "<no value>") current=none ;; esac
  case "$previous" in '' | "<no value>") previous=none ;; esac
  info "host         $HOST"
  info "image        $IMAGE_REPO:current = $current; previous = $previous"
  info "health       $HEALTH_STATE"
  info "files        $REMOTE_DIR/docker-compose.yml, $REMOTE_DIR/.env (mode 600); data in the volume market-streamer_market-data"
  printf '%s\n' "$out" | { grep -v -e '^current=' -e '^previous=' || true; } | sed 's/^/    /'
  info "logs         $PROG --logs $HOST"
  info "roll back    $PROG --rollback $HOST"
  info "health port  ssh -N -L 8080:127.0.0.1:8080 $HOST, then health_check --url http://127.0.0.1:8080"
  info "Schwab login $PROG --login $HOST   (every 7 days)"
}

# ---------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------

intro() {
  if [ "$DRY_RUN" = 1 ]; then
    printf 'Dry run: nothing below is executed.\n'
  fi
  printf '%s %s to %s (ssh options: %s)\n' "$PROG" "$MODE" "$HOST" "${SSH_ARGS[*]}"
}

mode_deploy() {
  need_local ssh docker gzip
  check_env_file
  VERSION="$(image_version)"
  IMAGE="$IMAGE_REPO:$VERSION"
  intro
  info "version $VERSION"
  check_box
  build_image
  ship_image
  upload_config
  start_service
  wait_healthy
  summary
}

mode_config_only() {
  need_local ssh
  check_env_file
  intro
  check_box
  if [ "$DRY_RUN" = 0 ] && [ -z "$REMOTE_CURRENT" ]; then
    die "there is no market-streamer image on $HOST yet: deploy it first with $PROG $HOST"
  fi
  upload_config
  start_service
  wait_healthy
  summary
}

mode_rollback() {
  need_local ssh
  intro
  check_box
  step "Switch market-streamer:current and market-streamer:previous"
  remote "$D image inspect $IMAGE_REPO:previous >/dev/null 2>&1 || { echo 'no previous image on the box: nothing to roll back to' >&2; exit 3; }; $D tag $IMAGE_REPO:current $IMAGE_REPO:rollback && $D tag $IMAGE_REPO:previous $IMAGE_REPO:current && $D tag $IMAGE_REPO:rollback $IMAGE_REPO:previous && $D rmi $IMAGE_REPO:rollback >/dev/null" ||
    die "rollback failed on $HOST (see above); nothing was changed"
  IMAGE_CHANGED=1
  start_service
  wait_healthy
  summary
}

mode_bootstrap() {
  need_local ssh
  [ -r "$BOOTSTRAP_SRC" ] || die "$BOOTSTRAP_SRC is missing"
  intro
  step "Install swap, Docker and the compose plugin on $HOST (infrastructure/bootstrap.sh as root)"
  local cmd="if [ \"\$(id -u)\" = 0 ]; then SWAP_SIZE_MB=$SWAP_SIZE_MB bash -s; else sudo -n SWAP_SIZE_MB=$SWAP_SIZE_MB bash -s; fi"
  printf '+ %s %s < %s\n' "$SSH_SHOWN" "$(q "$cmd")" "$(q "$BOOTSTRAP_SRC")"
  if [ "$DRY_RUN" = 0 ]; then
    ssh "${SSH_ARGS[@]}" "$HOST" "$cmd" <"$BOOTSTRAP_SRC" ||
      die "bootstrap failed on $HOST (see above). The user needs passwordless sudo (ec2-user and ubuntu have it)"
  fi
  step "Done. Next: $PROG $HOST"
}

mode_logs() {
  need_local ssh
  local tty=()
  [ ! -t 0 ] || tty=(-t)
  local cmd="$IN_DIR $D compose logs --follow --tail $LOG_TAIL $SERVICE"
  printf '+ %s %s\n' "$SSH_SHOWN" "$(q "$cmd")"
  [ "$DRY_RUN" = 1 ] || exec ssh ${tty[@]+"${tty[@]}"} "${SSH_ARGS[@]}" "$HOST" "$cmd"
}

mode_login() {
  need_local ssh
  [ "$DRY_RUN" = 1 ] || [ -t 0 ] || die "--login asks for the redirect URL: run it from a terminal"
  local cmd="$IN_DIR $D compose exec $SERVICE market-streamer login"
  printf '+ %s -t %s\n' "$SSH_SHOWN" "$(q "$cmd")"
  [ "$DRY_RUN" = 1 ] || exec ssh -t "${SSH_ARGS[@]}" "$HOST" "$cmd"
}

mode_status() {
  need_local ssh
  intro
  check_box
  step "Health"
  if [ "$DRY_RUN" = 1 ]; then
    remote "$HEALTH_CMD"
  else
    local out rc
    printf '+ %s %s\n' "$SSH_SHOWN" "$(q "$HEALTH_CMD")"
    if out="$(ssh "${SSH_ARGS[@]}" "$HOST" "$HEALTH_CMD" 2>&1)"; then rc=0; else rc=$?; fi
    printf '%s\n' "$out" | sed 's/^/    /'
    case "$rc:$(printf '%s\n' "$out" | head -n1)" in
      0:OK*) HEALTH_STATE=OK ;;
      1:WARNING*) HEALTH_STATE=WARNING ;;
      2:CRITICAL*) HEALTH_STATE=CRITICAL ;;
      3:UNKNOWN*) HEALTH_STATE=UNKNOWN ;;
      *) HEALTH_STATE="no answer (exit $rc; is the container running?)" ;;
    esac
  fi
  summary
}

case "$MODE" in
  deploy) mode_deploy ;;
  config-only) mode_config_only ;;
  rollback) mode_rollback ;;
  bootstrap) mode_bootstrap ;;
  logs) mode_logs ;;
  login) mode_login ;;
  status) mode_status ;;
esac
