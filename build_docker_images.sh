#!/usr/bin/env bash
# Builds hebi's container images, one per component: hebi-gateway, hebi-api (with the job-backend clients
# and hebi-runner), hebi-dataserver and hebi-web (nginx with the web app). Offline and incremental:
#   - the project's wheels and their dependencies are made on the host with pip (.cache/wheels), and
#     every build runs with --network none, installing them with pip --no-index;
#   - each image is tagged with a hash of its inputs (its Containerfile, its components' files, the
#     dependency versions, the base image's id); an image whose hash tag exists is not built again.
# It prints each image's tag and size and writes them to .cache/images.json (docs/images.md).
#
# Usage: ./build_docker_images.sh [--engine podman|docker] [--registry R] [--version V] [--push]
#                                 [--base IMAGE] [--savu-base IMAGE] [--source URL] [NAME...]
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '11,12p' "$0" | sed 's/^# //' >&2; exit 2; }
engine=podman registry=localhost version="" push=0 base="" savu_base="" names=()
source_url=$(git remote get-url origin 2>/dev/null || echo "hebi (no git remote)")
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine=${2:?}; shift 2 ;;
    --registry) registry=${2:?}; shift 2 ;;
    --version) version=${2:?}; shift 2 ;;
    --push) push=1; shift ;;
    --base) base=${2:?}; shift 2 ;;
    --savu-base) savu_base=${2:?}; shift 2 ;;
    --source) source_url=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "build_docker_images: unknown option $1" >&2; usage ;;
    *) names+=("$1"); shift ;;
  esac
done
all=(gateway api dataserver web)
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
for name in "${names[@]}"; do
  [ -f "images/$name/Containerfile" ] || { echo "build_docker_images: no image '$name' (${all[*]})" >&2; exit 2; }
done
case "$engine" in
  podman) import_env="ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
          # hebi's own settings (runc, rlimits), so the machine's podman configuration need not change.
          export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/images/containers.conf} ;;
  docker) import_env="ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" ;;
  *) echo "build_docker_images: --engine is podman or docker" >&2; exit 2 ;;
esac
command -v "$engine" >/dev/null || { echo "build_docker_images: $engine is not installed (scripts/install-system.sh podman)" >&2; exit 1; }

say() { printf 'images: %s\n' "$*"; }
exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }
image_id() { "$engine" image inspect --format '{{.Id}}' "$1"; }
hash_of() { sha256sum | cut -c1-12; }
cache=.cache
mkdir -p "$cache"
# One build at a time per checkout: two (a test and a benchmark, say) would share the wheel folder.
exec 9>"$cache/build.lock"
flock 9
# Everything under .cache is made here and never committed.
[ -f "$cache/.gitignore" ] || echo '*' > "$cache/.gitignore"

# --- Bases: Debian bookworm from Debian's own packages (mmdebstrap), made once and reused. -----------
# Debian's python3 is 3.11, the ABI of the cp311 wheels made on the host.
debian_base() {  # NAME PACKAGES [MMDEBSTRAP OPTION...] -> prints the tag
  local packages=$2 tag
  # A changed package list or recipe makes a new base (and so new images); an unchanged one is reused.
  tag="localhost/$1:bookworm-$({ printf '%s\n' "$@"; declare -f debian_base; } | hash_of)"
  if ! exists "$tag"; then
    command -v mmdebstrap >/dev/null || { echo "build_docker_images: mmdebstrap is missing (scripts/install-system.sh podman), or pass --base" >&2; exit 1; }
    say "making the base $tag from Debian's packages (once)" >&2
    # podman import sets no environment: without PATH no command would be found.
    # Documentation, manual pages and translations are never read in a container: left out (~50 MB).
    mmdebstrap --quiet --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' "${@:3}" bookworm - \
      | "$engine" import --change "$import_env" - "$tag" >/dev/null
  fi
  echo "$tag"
}
python_base=$base
if [ -z "$python_base" ]; then
  python_base=$(debian_base hebi-base python3,python3-venv,ca-certificates)
elif ! exists "$python_base"; then
  "$engine" pull "$python_base" >/dev/null
fi
# The API runs the schedulers' commands on a submit host over SSH (jobs.ssh): its base adds the
# OpenSSH client; and GNU Octave, for users' .m scripts run as jobs in the pod. Only octave-cli is
# run, with no window system: what only Octave's GUI and OpenGL drawing use go again (Qt 45 MB, Mesa's
# drivers with LLVM 160 MB), and texinfo for its help with the perl that pulls in (60 MB).
# A --base given is used as it is.
octave_unused="libqt5core5a libqt5dbus5 libqt5network5 libqt5gui5 libqt5widgets5 libqt5printsupport5 libqt5sql5
  libqt5help5 libqt5xml5 libqscintilla2-qt5-15 libqscintilla2-qt5-l10n libgl1-mesa-dri libllvm15 libz3-4
  texinfo tex-common libtext-unidecode-perl libxml-libxml-perl libxml-sax-perl libxml-sax-base-perl
  libxml-namespacesupport-perl libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl
  perl perl-modules-5.36 libperl5.36"
api_base=$python_base
[ -n "$base" ] || api_base=$(debian_base hebi-base-api python3,python3-venv,ca-certificates,openssh-client,octave \
  --customize-hook="chroot \"\$1\" dpkg --purge --force-depends $(echo $octave_unused) >/dev/null 2>&1")
# The web image needs nginx and a bare Python for the config renderer, not the Python base's venv.
# nginx-common's maintainer scripts pull in perl (47 MB); nothing runs it once nginx is installed.
web_base=$(debian_base hebi-base-nginx nginx-light,python3-minimal \
  --customize-hook='chroot "$1" dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 >/dev/null 2>&1')

# The gateway may run its nginx front (gateway.front): Debian's nginx beside the Python base.
gateway_base=$python_base
[ -n "$base" ] || gateway_base=$(debian_base hebi-base-gateway python3,python3-venv,ca-certificates,nginx-light \
  --customize-hook='chroot "$1" dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 >/dev/null 2>&1')

# --- What each image is made of ---------------------------------------------------------------------
components() {
  case "$1" in
    gateway) echo common kubernetes/pod_launcher kubernetes/gateway ;;
    api) echo common api runner ;;
    dataserver) echo common dataserver ;;
  esac
}
base_of() {
  case "$1" in
    web) echo "$web_base" ;;
    api) echo "${savu_base:-$api_base}" ;;
    gateway) echo "$gateway_base" ;;
    *) echo "$python_base" ;;
  esac
}
# The dependency versions the tests ran with (the venv's), so the images carry the same ones.
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$python" -m pip list --format=freeze --exclude-editable 2>/dev/null | grep -v '^hebi-' > "$cache/constraints.txt" || true
web_files() { find web/dist -type f | sort; echo web/nginx/session.conf.template common/hebi_common/nginx_conf.py images/web/entrypoint.sh; }
content_hash() {
  local name=$1
  {
    echo "base $(image_id "$(base_of "$name")")"
    # This script too: how an image is built (its labels, options, contexts) is part of what it is.
    cat "$0" "images/$name/Containerfile"
    if [ "$name" = web ]; then
      [ -d web/dist ] || { echo "build_docker_images: web/dist is missing: build the web app first (cd web && npm run build)" >&2; exit 1; }
      web_files | xargs sha256sum
    else
      cat "$cache/constraints.txt"
      # shellcheck disable=SC2046
      git ls-files -co --exclude-standard -z -- $(components "$name") | xargs -0 sha256sum
    fi
  } | hash_of
}

# --- Wheels, made on the host (only when some Python image has to be built) ---------------------------
wheels_made=0
make_wheels() {
  [ "$wheels_made" = 0 ] || return 0
  "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "build_docker_images: $python is not Python 3.11, the base's Python: its wheels would not fit" >&2; exit 1; }
  say "making wheels on the host ($cache/wheels)"
  local new=$cache/wheels.new
  # Built from a copy of exactly the hashed files, so no build/ folder lands in the work tree.
  src=$(mktemp -d); trap 'rm -rf "$src"' EXIT
  git ls-files -co --exclude-standard -z -- common api dataserver runner kubernetes | tar --null -T - -cf - | tar -xf - -C "$src"
  rm -rf "$new"; mkdir -p "$new" "$cache/wheels"
  # The previous wheelhouse is a local source, so unchanged dependencies are not downloaded again.
  # pip's warnings (setuptools' deprecations, the machine's index settings) go to a log, shown on failure.
  "$python" -m pip wheel -q --wheel-dir "$new" --find-links "$cache/wheels" -c "$cache/constraints.txt" \
    "$src/common" "$src/api[drmaa,kubernetes,slurmrest]" "$src/dataserver" "$src/runner" "$src/kubernetes/pod_launcher" \
    "$src/kubernetes/gateway" > "$cache/wheels.log" 2>&1 || { cat "$cache/wheels.log" >&2; exit 1; }
  cp "$cache/constraints.txt" "$new/constraints.txt"
  rm -rf "$cache/wheels"; mv "$new" "$cache/wheels"
  rm -rf "$cache/context"; mkdir -p "$cache/context"
  cp -al "$cache/wheels" "$cache/context/wheels"
  wheels_made=1
}
web_context() {
  local ctx=$cache/context-web
  rm -rf "$ctx"; mkdir -p "$ctx/hebi_common"
  cp -r web/dist "$ctx/dist"
  cp web/nginx/session.conf.template images/web/entrypoint.sh "$ctx/"
  # Only the renderer (standard library only) of hebi_common, not the package and its dependencies.
  cp common/hebi_common/nginx_conf.py "$ctx/hebi_common/"
  : > "$ctx/hebi_common/__init__.py"
  echo "$ctx"
}

# --- Build what changed -------------------------------------------------------------------------------
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
declare -A tags built descriptions=(
  [gateway]="hebi's login and routing proxy"
  [api]="hebi's Savu REST API of a session, with its job-backend clients and hebi-runner"
  [dataserver]="hebi's HDF5/NeXus server of a session"
  [web]="hebi's session nginx with the web app"
)
for name in "${names[@]}"; do
  hash=$(content_hash "$name")
  tag="$registry/hebi-$name:$hash"
  tags[$name]=$tag
  if exists "$tag"; then
    say "hebi-$name unchanged: $tag"; built[$name]=false
  else
    start=$SECONDS
    if [ "$name" = web ]; then ctx=$(web_context); else make_wheels; ctx=$cache/context; fi
    args=(--build-arg "BASE=$(base_of "$name")")
    [ "$name" = api ] && [ -n "$savu_base" ] && args+=(--build-arg "VENV_OPTIONS=--system-site-packages")
    say "building hebi-$name: $tag"
    # --network none: nothing in a build reaches any network; everything it needs is in its context.
    "$engine" build --network none -q -f "images/$name/Containerfile" "${args[@]}" \
      --label "org.opencontainers.image.title=hebi-$name" \
      --label "org.opencontainers.image.description=${descriptions[$name]}" \
      --label "org.opencontainers.image.version=${version:-$hash}" \
      --label "org.opencontainers.image.source=$source_url" \
      --label "org.opencontainers.image.licenses=Apache-2.0" \
      --label "org.opencontainers.image.revision=$revision" \
      -t "$tag" "$ctx" >/dev/null
    # The build stage's image (the one with pip and the wheels) is of no further use; one that another
    # build running at the same moment still uses stays, for a later prune.
    "$engine" image prune -f --filter label=hebi.stage=build >/dev/null 2>&1 || true
    say "built hebi-$name in $((SECONDS - start)) s"; built[$name]=true
    # This checkout's previous build of the image is outdated: removed, unless a container still uses it.
    # Only its own: other checkouts on the host (another clone's tests, CI) may be running theirs.
    previous=$(grep -o "\"$name\": {\"tag\": \"[^\"]*\"" "$cache/images.json" 2>/dev/null | sed 's/.*"tag": "//; s/"$//' || true)
    if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then "$engine" rmi "$previous" >/dev/null 2>&1 || true; fi
  fi
  if [ -n "$version" ] && [ "$version" != "$hash" ]; then
    "$engine" tag "$tag" "$registry/hebi-$name:$version"
  fi
  if [ "$push" = 1 ]; then
    "$engine" push "$tag"
    [ -z "$version" ] || "$engine" push "$registry/hebi-$name:$version"
  fi
done

# --- Report: tags and sizes, printed and written for the launcher and its tests ----------------------
{
  printf '{\n  "engine": "%s",\n  "python_base": "%s",\n  "web_base": "%s",\n  "images": {' "$engine" "$python_base" "$web_base"
  sep=""
  for name in "${names[@]}"; do
    size=$("$engine" image inspect --format '{{.Size}}' "${tags[$name]}")
    printf '%s\n    "%s": {"tag": "%s", "size": %s, "built": %s}' "$sep" "$name" "${tags[$name]}" "$size" "${built[$name]}"
    sep=","
    say "$(printf '%-16s %6d MB  %s' "hebi-$name" $((size / 1000000)) "${tags[$name]}")" >&2
  done
  printf '\n  }\n}\n'
} > "$cache/images.json.new"
mv "$cache/images.json.new" "$cache/images.json"
say "tags written to $cache/images.json"
