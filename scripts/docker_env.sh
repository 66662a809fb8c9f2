#!/usr/bin/env bash
# A Docker engine and the local base image for `bentoml containerize`, on a Debian machine with
# no container registry (what the container tests and docs/deploy.md use).
#
#   scripts/docker_env.sh up     install docker.io and debootstrap (apt, when missing), start
#                                dockerd (when none answers), make the base image (when missing)
#   scripts/docker_env.sh down   stop the dockerd that `up` started (never one it found running)
#   scripts/docker_env.sh base   only the base image (the engine must answer)
#
# The base image: BentoML's generated Dockerfile starts FROM python:3.11-slim, which no
# registry here serves. `debootstrap --variant=minbase` builds Debian bookworm (Python 3.11)
# from this machine's own apt mirror; the host's extra CA certificates are copied in and
# trusted (update-ca-certificates, SSL_CERT_FILE), and EXTERNALLY-MANAGED is removed so pip
# behaves as in the official image. It is tagged image-embed-base:<key>, the key being a hash
# of everything it is made from (this recipe, the mirror, the CA certificates), and then
# python:3.11-slim, unless a python:3.11-slim that is not ours (a real one, pulled) is there.
#
# Prints nothing on success but its progress on stderr; exit status 0 when the engine answers
# and the base image is there. Needs root (or sudo) for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${IMAGE_EMBED_DOCKER_STATE:-/tmp/image-embed-dockerd}
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
BASE_TAG=python:3.11-slim
BASE_REPO=image-embed-base
LABEL=org.image-embed.base-key
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
# Debian's docker CLI (20.10): the Docker 28 CLI some machines have first on PATH has no
# buildx, while BentoML turns BuildKit on.
export PATH=/usr/bin:/usr/sbin:$PATH DOCKER_BUILDKIT=0

log() { echo "docker_env: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_packages() {
  local missing=()
  [ -x /usr/bin/docker ] && [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
  [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  [ ${#missing[@]} = 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
  if engine_answers; then return 0; fi
  mkdir -p "$STATE"
  log "starting dockerd (log: $LOG)"
  # setsid: its own session, so it outlives the shell that started it until `down`.
  as_root setsid dockerd --pidfile "$PIDFILE" >"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    if engine_answers; then return 0; fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; its log:"
  tail -n 30 "$LOG" >&2
  return 1
}

stop_engine() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE")
  log "stopping dockerd (pid $pid)"
  as_root kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  rm -f "$PIDFILE"
}

mirror() {
  # The first Debian archive URL of the apt sources (deb822 or one-line form).
  local url
  url=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$url" ] || url=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | awk '{print $2}' | grep -v security | head -n 1)
  echo "${url:-http://deb.debian.org/debian}"
}

base_key() {
  { sed -n '/^make_base()/,/^}/p' "$0"; echo "$SUITE $PACKAGES $(mirror)";
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16
}

make_base() {
  local key=$1 rootfs
  rootfs=$(mktemp -d /tmp/image-embed-rootfs.XXXXXX)
  log "debootstrap $SUITE from $(mirror) (a few minutes, once per machine)"
  as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$(mirror)" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$STATE/debootstrap.log" >&2; return 1; }
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    as_root mkdir -p "$rootfs/usr/local/share/ca-certificates"
    as_root cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  as_root chroot "$rootfs" update-ca-certificates >/dev/null
  as_root rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker import \
    -c "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
    -c "ENV LANG=C.UTF-8" \
    -c "LABEL $LABEL=$key" \
    -c 'CMD ["python3"]' \
    - "$BASE_REPO:$key" >/dev/null
  as_root rm -rf "$rootfs"
}

ensure_base() {
  local key existing
  key=$(base_key)
  mkdir -p "$STATE"
  if ! docker image inspect "$BASE_REPO:$key" >/dev/null 2>&1; then make_base "$key"; fi
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    existing=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$BASE_TAG" 2>/dev/null || true)
    if [ -z "$existing" ] || [ "$existing" = "<no value>" ]; then
      log "$BASE_TAG is there and is not ours: using it as it is"
      return 0
    fi
  fi
  docker tag "$BASE_REPO:$key" "$BASE_TAG"
}

case "${1:-}" in
  up) install_packages; start_engine; ensure_base ;;
  down) stop_engine ;;
  base) ensure_base ;;
  *) echo "usage: $0 up|down|base" >&2; exit 2 ;;
esac
