# IndexMem — shared by scripts/test_env.sh and scripts/oracle_env.sh (sourced, not run):
# a Python venv with pinned requirements. The caller defines `die` and `log`.

# venv_ready VENV REQS MODULE...: true when VENV has every pinned version of REQS and
# imports every MODULE (so a broken install is not taken for a ready one).
venv_ready() {
    local venv="$1" reqs="$2"
    shift 2
    [[ -x "$venv/bin/python" ]] || return 1
    "$venv/bin/python" - "$reqs" "$@" <<'PY' >/dev/null 2>&1
import importlib
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    if want and version(name.strip()) != want.strip():
        sys.exit(1)
for module in sys.argv[2:]:
    importlib.import_module(module)
PY
}

# venv_create VENV PYTHON: makes VENV with PYTHON unless it exists.
venv_create() {
    local venv="$1" python="$2"
    command -v "$python" >/dev/null 2>&1 || die "$python not found (install Python 3 or set PYTHON=...)"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv $venv"
        "$python" -m venv "$venv" || die "could not create venv $venv (Debian: apt-get install python3-venv)"
    fi
}
