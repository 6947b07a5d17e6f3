#!/usr/bin/env bash
# Installs the Debian packages hebi's demo and tests run for real: nginx (the session's router and
# the gateway's front), Chromium (the browser the UI tests drive) and podman (the images of
# build_docker_images.sh and the podman launcher; hebi's settings for it are images/containers.conf,
# used through CONTAINERS_CONF, so no system-wide podman file is written) and apache (Apache with
# mod_auth_openidc: the login proxy the trusted-header tests put in front, with a config of their own)
# and ssh (OpenSSH's server and client: scripts/sshd.sh's stand-in submit host for jobs over SSH)
# and octave (GNU Octave, which runs users' .m scripts as jobs on this machine's cluster nodes).
# Needs root; without root it only reports what is missing, so the caller can say so clearly (or fail
# under HEBI_REQUIRE_REAL=1).
#
# Usage: scripts/install-system.sh [nginx] [chromium] ...   (no argument = the demo's set)
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(nginx)

declare -A packages=(
  [nginx]="nginx-light"
  [chromium]="chromium chromium-driver fonts-dejavu-core"
  [wrk]="wrk"
  [podman]="podman runc mmdebstrap uidmap fuse-overlayfs catatonit"
  [apache]="apache2 libapache2-mod-auth-openidc"
  [ssh]="openssh-server openssh-client"
  [octave]="octave"
)
declare -A probe=(
  [nginx]="nginx"
  [chromium]="chromium"
  [wrk]="wrk"
  [podman]="podman runc mmdebstrap newuidmap fuse-overlayfs catatonit"
  [apache]="apache2 /usr/lib/apache2/modules/mod_auth_openidc.so"
  [ssh]="sshd ssh ssh-keygen"
  [octave]="octave-cli"
)
# A part is there when every command its probe names is (on PATH or in /usr/sbin), and every file it
# names by absolute path (a module) exists.
present() {
  local command
  for command in $1; do
    if [[ $command == /* ]]; then [ -e "$command" ] || return 1; continue; fi
    command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || return 1
  done
}

missing=()
for part in "${want[@]}"; do
  [ -n "${packages[$part]:-}" ] || { echo "install-system: unknown part '$part'" >&2; exit 2; }
  present "${probe[$part]}" || missing+=("$part")
done
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-system: missing ${missing[*]} and not root: install them with" >&2
  for part in "${missing[@]}"; do echo "    apt-get install ${packages[$part]}" >&2; done
  exit 1
fi

pkgs=()
for part in "${missing[@]}"; do pkgs+=(${packages[$part]}); done
echo "install-system: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
# apt never starts daemons here (policy-rc.d); hebi starts its own nginx with its own config.
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
