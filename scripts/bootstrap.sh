#!/usr/bin/env bash
# Installs what is missing for `make demo` / `make test`, and nothing that is already there:
#   - Debian packages of the real components (as root; otherwise says what to install),
#   - every hebi component, editable, into one project-local virtual environment (.venv),
#   - the web app's npm packages and its build (web/dist),
#   - for the tests, as root with podman: the container images (build_docker_images.sh, incremental).
# Usage: scripts/bootstrap.sh demo|test
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-demo}
say() { printf 'bootstrap: %s\n' "$*"; }

require_real=${HEBI_REQUIRE_REAL:-0}
case "$purpose" in
  demo) parts=(nginx); [ "${HEBI_LAUNCHER:-local}" = podman ] && parts+=(podman) ;;
  test) parts=(nginx chromium podman apache octave) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
if ! scripts/install-system.sh "${parts[@]}"; then
  if [ "$require_real" != 0 ]; then
    say "HEBI_REQUIRE_REAL=1 and real components are missing: failing"; exit 1
  fi
  say "continuing without them: the demo uses its built-in router instead of nginx, browser tests are skipped"
fi
# The real schedulers the job tests run against (scripts/gridengine.sh, scripts/slurm.sh; root only).
if [ "$purpose" = test ]; then
  if [ "$(id -u)" = 0 ]; then
    for scheduler in gridengine slurm; do
      if ! { scripts/$scheduler.sh install && scripts/$scheduler.sh start; }; then
        [ "$require_real" = 0 ] || { say "HEBI_REQUIRE_REAL=1 and $scheduler did not start: failing"; exit 1; }
        say "$scheduler did not start: its job tests will be skipped"
      fi
    done
  else
    say "not root: GridEngine and Slurm cannot be installed or started; their job tests will be skipped"
  fi
fi

# Python: one venv with every component installed editable (each also installs alone from its folder).
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: hebi needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2; exit 1
fi
stamp=.venv/.hebi-installed-$purpose
# The tests also exercise the runner's optional astra-toolbox path (GPL-3.0, with CUDA runtime wheels;
# docs/licences.md), so `make test` installs that extra; the demo does without it.
runner_extras=test
[ "$purpose" = test ] && runner_extras=test,astra
inputs=(requirements-dev.txt common/pyproject.toml api/pyproject.toml dataserver/pyproject.toml
        kubernetes/pod_launcher/pyproject.toml kubernetes/gateway/pyproject.toml
        runner/pyproject.toml images/constraints.txt)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ -n "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  say "installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt -c images/constraints.txt \
    -e common -e 'api[drmaa,kubernetes,slurmrest]' -e dataserver -e kubernetes/pod_launcher -e kubernetes/gateway -e "runner[$runner_extras]"
  touch "$stamp"
fi

# Web: npm packages from the lock file, then the production build.
if ! command -v npm >/dev/null; then
  echo "bootstrap: npm (Node 20+) is needed to build the web app" >&2; exit 1
fi
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  say "installing npm packages"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
# The real OpenID Connect provider the login tests sign in against (npm oidc-provider, tests/oidc).
if [ "$purpose" = test ] && { [ ! -d tests/oidc/node_modules ] || [ tests/oidc/package-lock.json -nt tests/oidc/node_modules/.package-lock.json ]; }; then
  say "installing the test OIDC provider"
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html web/package.json web/vite.config.ts -newer web/dist/index.html 2>/dev/null)" ]; then
  say "building the web app"
  (cd web && npm run --silent build)
fi

# Images for the image and podman-launcher tests: incremental (an unchanged tree builds nothing, in about
# a second), offline builds (docs/images.md). They need root and podman (scripts/install-system.sh podman).
if [ "$purpose" = test ]; then
  if [ "$(id -u)" = 0 ] && command -v podman >/dev/null && command -v mmdebstrap >/dev/null; then
    if ! ./build_docker_images.sh; then
      [ "$require_real" = 0 ] || { say "HEBI_REQUIRE_REAL=1 and build_docker_images.sh failed: failing"; exit 1; }
      say "build_docker_images.sh failed: the image and podman tests will fail"
    fi
  else
    say "not root or no podman: the images are not built; their tests are skipped"
  fi
fi
