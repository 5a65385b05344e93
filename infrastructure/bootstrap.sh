#!/usr/bin/env bash
# Prepares a fresh Amazon Linux 2023 or Ubuntu/Debian box to run market-streamer:
#   1. swap (SWAP_SIZE_MB, default 1024), first, because package managers alone can exhaust
#      512 MB of memory;
#   2. Docker Engine and the compose plugin, started now and at every boot;
#   3. the login user (SUDO_USER, or DEPLOY_USER, or ec2-user/ubuntu/admin) in the docker group.
#
# Runs as root and is idempotent: run it again and it only checks. Used two ways:
#   ./deploy.sh --bootstrap HOST          (sends this file over SSH to `sudo bash -s`)
#   infrastructure/main.tf user data      (Lightsail runs it as root at first boot)
# Output of the first-boot run: /var/log/cloud-init-output.log on the box.
set -euo pipefail

SWAP_SIZE_MB="${SWAP_SIZE_MB:-1024}"
# The compose plugin for Amazon Linux (Ubuntu and Debian get it from Docker's apt repository).
COMPOSE_VERSION="${COMPOSE_VERSION:-latest}"

log() { printf '[bootstrap] %s\n' "$*"; }
die() {
  printf '[bootstrap] error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash $0)"
[ -r /etc/os-release ] || die "no /etc/os-release: unknown Linux distribution"
# shellcheck disable=SC1091 # the distribution's own file
. /etc/os-release

add_swap() {
  if [ -n "$(swapon --noheadings --show=NAME 2>/dev/null)" ]; then
    log "swap already on: $(swapon --noheadings --show=NAME,SIZE | tr -s ' ' | paste -sd, -)"
  else
    if [ ! -f /swapfile ]; then
      log "creating a ${SWAP_SIZE_MB} MB swap file /swapfile"
      # dd rather than fallocate: swapon refuses files with holes on some file systems (XFS).
      dd if=/dev/zero of=/swapfile bs=1M count="$SWAP_SIZE_MB" status=none
      chmod 600 /swapfile
      mkswap /swapfile >/dev/null
    fi
    swapon /swapfile
    log "swap on: /swapfile"
  fi
  if [ -f /swapfile ] && ! grep -qE '^/swapfile[[:space:]]' /etc/fstab; then
    echo '/swapfile none swap defaults 0 0' >>/etc/fstab
  fi
  # Swap only under real pressure; the service itself should never need it.
  echo 'vm.swappiness = 10' >/etc/sysctl.d/90-market-streamer-swap.conf
  sysctl -q -p /etc/sysctl.d/90-market-streamer-swap.conf || true
}

install_docker_amazon_linux() {
  if ! command -v docker >/dev/null 2>&1; then
    log "installing docker (dnf)"
    dnf install -y -q docker
  fi
  if ! docker compose version >/dev/null 2>&1; then
    local arch url dir=/usr/local/lib/docker/cli-plugins
    arch="$(uname -m)"
    if [ "$COMPOSE_VERSION" = latest ]; then
      url="https://github.com/docker/compose/releases/latest/download/docker-compose-linux-${arch}"
    else
      url="https://github.com/docker/compose/releases/download/${COMPOSE_VERSION}/docker-compose-linux-${arch}"
    fi
    log "installing the docker compose plugin from $url"
    mkdir -p "$dir"
    curl -fsSL --retry 3 -o "$dir/docker-compose.tmp" "$url"
    chmod 755 "$dir/docker-compose.tmp"
    mv "$dir/docker-compose.tmp" "$dir/docker-compose"
  fi
}

install_docker_apt() {
  # $1: ubuntu or debian (the path of Docker's repository).
  if ! command -v docker >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
    log "installing docker-ce and docker-compose-plugin from Docker's apt repository"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q ca-certificates curl
    install -m 0755 -d /etc/apt/keyrings
    curl -fsSL --retry 3 "https://download.docker.com/linux/$1/gpg" -o /etc/apt/keyrings/docker.asc
    chmod a+r /etc/apt/keyrings/docker.asc
    echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/$1 ${VERSION_CODENAME:?} stable" \
      >/etc/apt/sources.list.d/docker.list
    apt-get update -q
    apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-compose-plugin
  fi
}

add_user_to_docker_group() {
  local user="${DEPLOY_USER:-${SUDO_USER:-}}" candidate
  if [ -z "$user" ] || [ "$user" = root ]; then
    user=""
    for candidate in ec2-user ubuntu admin; do
      if id "$candidate" >/dev/null 2>&1; then
        user="$candidate"
        break
      fi
    done
  fi
  if [ -z "$user" ]; then
    log "no login user found to add to the docker group; use REMOTE_DOCKER='sudo docker' with deploy.sh"
  elif id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
    log "$user is already in the docker group"
  else
    usermod -aG docker "$user"
    log "added $user to the docker group (takes effect at the next SSH login)"
  fi
}

add_swap
case "${ID:-}" in
  amzn) install_docker_amazon_linux ;;
  ubuntu | debian) install_docker_apt "$ID" ;;
  *) die "unsupported distribution '${ID:-?}': use Amazon Linux 2023 or Ubuntu (or install Docker and the compose plugin by hand)" ;;
esac
systemctl enable --now docker >/dev/null 2>&1 || systemctl start docker
add_user_to_docker_group
log "ready: $(docker --version); $(docker compose version)"
