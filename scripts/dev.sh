#!/usr/bin/env bash
# Sets up everything napari-unmix needs on a fresh Debian/Ubuntu machine, then runs a job.
#
#   bash scripts/dev.sh demo    # install, then run `napari-unmix demo` (the main job)
#   bash scripts/dev.sh test    # install (with test + GUI deps), then the whole test suite, headless
#   bash scripts/dev.sh lint    # install the lint tools, then ruff and the import-linter contracts
#   bash scripts/dev.sh docs    # install the docs tools, then build the site into site/ (strict)
#
# It creates .venv/ in the repository and is safe to run again (it reuses .venv/).
# torch is pinned to 2.13.0: on Linux that pin installs a small CPU build quickly,
# where an unpinned torch would pull a multi-GB CUDA build.  The lint and docs jobs
# read the code without importing torch, so they do not install it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

job="${1:-test}"
shift || true
PY="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    # install the given Debian packages, only those not installed yet
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "[dev.sh] apt-get install ${missing[*]}"
        sudo_ apt-get update -qq
        sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

setup_python() {
    if ! "$PY" -c "import venv, ensurepip" 2>/dev/null; then
        apt_install python3-venv
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "[dev.sh] creating .venv with $("$PY" --version)"
        "$PY" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip
    case "$1" in
        *torch*) .venv/bin/python -m pip install -q "$TORCH_PIN" ;;
    esac
    .venv/bin/python -m pip install -q -e ".$1"
}

case "$job" in
    demo)
        setup_python "[torch]"
        exec .venv/bin/napari-unmix demo "$@"
        ;;
    test)
        # headless GUI tests: a virtual X server and the X11/OpenGL libraries Qt needs
        apt_install xvfb xauth libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 \
            libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
            libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
        setup_python "[torch,testing]"
        export NAPARI_ENSURE_PLUGIN_MAIN_THREAD=1
        exec .venv/bin/python -m pytest "$@"
        ;;
    lint)
        # ruff (rules in pyproject.toml), then the layer contracts of [tool.importlinter]
        setup_python "[lint]"
        .venv/bin/ruff check src tests benchmarks scripts
        exec .venv/bin/lint-imports "$@"
        ;;
    docs)
        # the documentation site (mkdocs.yml); --strict: every warning is an error
        setup_python "[docs]"
        export NO_MKDOCS_2_WARNING=1
        exec .venv/bin/mkdocs build --strict --site-dir site "$@"
        ;;
    *)
        echo "usage: bash scripts/dev.sh {demo|test|lint|docs} [extra args]" >&2
        exit 2
        ;;
esac
