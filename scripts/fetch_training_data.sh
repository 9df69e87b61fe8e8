#!/usr/bin/env bash
# fetch_training_data.sh — build the plain-text training corpus for the learned KV-cache indexer.
#
# Usage:
#   scripts/fetch_training_data.sh            # build data/training/ (no-op if it is already up to date)
#   FORCE=1 scripts/fetch_training_data.sh    # rebuild even if MANIFEST.json matches
#   ALLOW_NEWER=1 scripts/fetch_training_data.sh
#                                             # accept the archive's current version when a pinned
#                                             # version below is no longer downloadable (the manifest
#                                             # then records the version actually used)
#
# What it does:
#   * downloads pinned Debian packages with `apt-get download` (no root install; cached in
#     <repo>/.cache/debs/training/) and unpacks them with `dpkg-deb -x` into a temp dir;
#   * turns each source document into one UTF-8 plain-text file in <repo>/data/training/
#     (HTML stripped with Python's html.parser, man pages rendered with groff, the King James
#     Bible dumped with the `bible` program from bible-kjv), whitespace normalised, no markup;
#   * keeps the evaluation's haystacks out: every line mostly covered by 8-word shingles that
#     also occur in Debian's `fortunes` package or in /usr/share/common-licenses is dropped
#     (this removes e.g. the GFDL appendix of the Bash manual and famous quoted verses);
#   * writes data/training/MANIFEST.json: per file its source package + version, bytes, sha256,
#     plus recipe_sha256 = sha256 over the sorted "name sha256" lines of all text files.
#
# Idempotent: if MANIFEST.json exists, was written by this exact script (script_sha256) and every
# listed file still has its recorded sha256, nothing is downloaded and the summary is printed.
# Deterministic: fixed package versions, sorted input order, no timestamps in the outputs.
# Needs: bash, python3 (standard library only), apt-get, dpkg-deb, groff (groff-base).
# Run `apt-get update` first if apt-get cannot find a package.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO_ROOT/data/training"
DEBS="$REPO_ROOT/.cache/debs/training"
SCRIPT_PATH="$REPO_ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"

# Pinned Debian (bookworm) packages: name=version.
PACKAGES=(
    "bible-kjv=4.38"                       # the `bible` reader program (to decode the text)
    "bible-kjv-text=4.38"                  # King James Bible, compressed text
    "debian-reference-en=2.100"            # Debian Reference (HTML)
    "debian-faq=11.1"                      # Debian FAQ (HTML)
    "python3.11-doc=3.11.2-6+deb12u9"      # Python 3.11 documentation (Sphinx HTML)
    "bash-doc=5.2.15-2"                    # Bash Reference Manual (texinfo HTML)
    "gnu-standards=2022.03.23-0.1"         # GNU Coding Standards + GNU Maintainer Information (HTML)
    "manpages=6.03-2"                      # Linux man pages, sections 1,4,5,6,7,8 (groff)
    "manpages-dev=6.03-2"                  # Linux man pages, sections 2,3 (groff)
    "fortunes=1:1.99.1-7.3"                # NOT training data: the eval haystack, used to filter overlap
)

log() { printf 'fetch_training_data: %s\n' "$*" >&2; }
die() { printf 'fetch_training_data: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "python3 not found"
SCRIPT_SHA="$(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1)"

# ---- fast path: output already up to date -------------------------------------------------
if [[ -z "${FORCE:-}" && -f "$OUT/MANIFEST.json" ]]; then
    if "$PYTHON" - "$OUT" "$SCRIPT_SHA" <<'PY'
import hashlib, json, os, sys
out, script_sha = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(out, "MANIFEST.json")))
if m.get("script_sha256") != script_sha:
    sys.exit(1)
for f in m["files"]:
    p = os.path.join(out, f["name"])
    if not os.path.isfile(p) or hashlib.sha256(open(p, "rb").read()).hexdigest() != f["sha256"]:
        sys.exit(1)
extra = sorted(set(n for n in os.listdir(out) if n.endswith(".txt")) - {f["name"] for f in m["files"]})
if extra:
    sys.exit(1)
print(f"fetch_training_data: up to date, nothing downloaded")
print(f"  files: {len(m['files'])}  total bytes: {m['total_bytes']}  recipe_sha256: {m['recipe_sha256']}")
PY
    then exit 0; fi
    log "MANIFEST.json missing, stale or not matching the files: rebuilding"
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the sources are Debian packages"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found"
command -v groff >/dev/null 2>&1 || die "groff not found: install it with 'apt-get install groff-base' (renders the man pages)"

# ---- download (cached) --------------------------------------------------------------------
mkdir -p "$DEBS"
chmod 755 "$DEBS" 2>/dev/null || true   # lets apt's _apt user write there (avoids a warning)
declare -A DEB_OF VERSION_OF
for spec in "${PACKAGES[@]}"; do
    name="${spec%%=*}"; version="${spec#*=}"
    # .deb file names encode ':' (epoch) as %3a
    pattern="${name}_${version//:/%3a}_*.deb"
    deb="$(find "$DEBS" -maxdepth 1 -name "$pattern" -print -quit)"
    if [[ -z "$deb" ]]; then
        log "downloading $name=$version"
        if ! (cd "$DEBS" && apt-get download -qq "$name=$version" >/dev/null 2>&1); then
            if [[ -n "${ALLOW_NEWER:-}" ]]; then
                log "pinned $name=$version not available; ALLOW_NEWER=1: taking the archive's version"
                (cd "$DEBS" && apt-get download -qq "$name" >/dev/null 2>&1) \
                    || die "package '$name' not available from apt (run 'apt-get update' first?)"
                pattern="${name}_*.deb"
            else
                apt-cache policy "$name" >&2 || true
                die "package '$name' version '$version' not available from apt (run 'apt-get update' first; if the archive moved on, rerun with ALLOW_NEWER=1 and update the pin in this script)"
            fi
        fi
        deb="$(find "$DEBS" -maxdepth 1 -name "$pattern" -print | sort | tail -n 1)"
        [[ -n "$deb" ]] || die "apt-get download $name produced no .deb in $DEBS"
    fi
    DEB_OF[$name]="$deb"
    VERSION_OF[$name]="$(dpkg-deb -f "$deb" Version)"
done

# ---- unpack --------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fetch_training_data.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
VERSIONS_FILE="$WORK/versions.tsv"
: > "$VERSIONS_FILE"
for spec in "${PACKAGES[@]}"; do
    name="${spec%%=*}"
    mkdir -p "$WORK/pkg/$name"
    dpkg-deb -x "${DEB_OF[$name]}" "$WORK/pkg/$name" || die "cannot unpack ${DEB_OF[$name]}"
    printf '%s\t%s\n' "$name" "${VERSION_OF[$name]}" >> "$VERSIONS_FILE"
done

# The KJV text is stored compressed; the `bible` program (from bible-kjv) decodes it.
BIBLE="$WORK/pkg/bible-kjv/usr/bin/bible"
[[ -x "$BIBLE" ]] || die "bible-kjv did not ship usr/bin/bible"
"$BIBLE" -p "$WORK/pkg/bible-kjv-text/usr/lib" -l0 "Gen1:1-Rev22:21" </dev/null > "$WORK/kjv.raw" \
    || die "the bible program failed to decode bible-kjv-text (missing libreadline8?)"

# ---- convert, filter, write manifest --------------------------------------------------------
log "converting to text in $OUT"
"$PYTHON" - "$WORK" "$OUT" "$SCRIPT_SHA" "$(groff --version | head -n 1)" <<'PY'
import gzip, hashlib, json, os, re, subprocess, sys, unicodedata
from html.parser import HTMLParser

work, out, script_sha, groff_version = sys.argv[1:5]
pkg = lambda name, *p: os.path.join(work, "pkg", name, *p)
versions = dict(line.rstrip("\n").split("\t") for line in open(os.path.join(work, "versions.tsv")))


# ---------- text normalisation ----------
def normalise(text):
    """NFC, no control chars, no trailing blanks, runs of spaces collapsed, <=1 blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u00ad", "").replace("\u200b", "").replace("\t", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    lines = [re.sub(r" {2,}", " ", l).strip() for l in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n"


# ---------- HTML -> text ----------
BLOCK = {"p", "div", "section", "article", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "li",
         "dt", "dd", "dl", "ul", "ol", "table", "tr", "pre", "blockquote", "title", "caption",
         "figure", "figcaption", "header", "footer", "main", "aside", "td", "th"}
SKIP_TAGS = {"script", "style", "head", "nav", "noscript", "svg", "button", "form"}
# navigation, tables of contents, permalinks, index pages of Sphinx / DocBook / texinfo output
SKIP_CLASSES = {"navheader", "navfooter", "toc", "header", "nav-panel", "contents",
                "section-toc", "headerlink", "sphinxsidebar", "related", "footer",
                "summary-letter", "mini-toc", "breadcrumbs", "mobile-nav", "copyright",
                "contents-heading"}
VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "param",
        "source", "track", "wbr"}


class Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.stack, self.skip, self.pre = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            if tag in BLOCK and not self.skip:
                self.parts.append("\n\n" if tag == "hr" else "\n")
            return
        classes = set((dict(attrs).get("class") or "").split())
        cls_skip = bool(classes & SKIP_CLASSES) or any(c.startswith("index-") for c in classes)
        skipping = tag in SKIP_TAGS or cls_skip
        self.stack.append((tag, skipping))
        if skipping:
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        if not self.skip and tag in BLOCK:
            self.parts.append("\n\n" if tag not in ("td", "th", "li", "dd", "tr") else "\n")

    def handle_endtag(self, tag):
        if tag in VOID or not any(t == tag for t, _ in self.stack):
            return
        while self.stack:   # pop to the matching tag (tolerates unclosed <p>, <li> ...)
            t, skipping = self.stack.pop()
            if skipping:
                self.skip -= 1
            if t == "pre":
                self.pre -= 1
            if not self.skip and t in BLOCK:
                self.parts.append("\n\n" if t not in ("td", "th") else " ")
            if t == tag:
                break

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(path):
    raw = open(path, "rb").read().decode("utf-8", errors="replace")
    p = Text()
    p.feed(raw)
    p.close()
    text = "".join(p.parts)
    text = "\n".join(l for l in text.split("\n") if l.strip() != "Jump to:")  # texinfo index bars
    return normalise(text)


def html_doc(paths):
    return normalise("\n\n".join(html_to_text(p) for p in paths))


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") if tag == "a" else None
        if href and "://" not in href and not href.startswith(("#", "mailto:")):
            self.hrefs.append(href.split("#")[0])


def reading_order(index, candidates):
    """Candidates in the order the index page first links to them, then the rest sorted."""
    p = Links()
    p.feed(open(index, encoding="utf-8", errors="replace").read())
    base = os.path.dirname(index)
    linked = [os.path.normpath(os.path.join(base, h)) for h in p.hrefs if h]
    rank = {}
    for h in linked:
        rank.setdefault(h, len(rank))
    return sorted(candidates, key=lambda c: (rank.get(os.path.normpath(c), len(rank)), c))


def sorted_html(root, exclude=()):
    found = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in files:
            if f.endswith(".html") and f not in exclude:
                found.append(os.path.join(d, f))
    return sorted(found)


# ---------- man pages -> text ----------
BOX_CHARS = set("─━═┼┬┴├┤┌┐└┘│┃║╪╞╡")


def man_doc(package, sections):
    root = pkg(package, "usr", "share", "man")
    chunks = []
    for sec in sections:
        d = os.path.join(root, "man" + sec)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue   # aliases
            src = gzip.open(p).read() if f.endswith(".gz") else open(p, "rb").read()
            body = [l for l in src.split(b"\n") if l.strip() and not l.startswith((b'.\\"', b"'\\\""))]
            if body and all(l.startswith(b".so ") for l in body):
                continue   # ".so other.3" redirects
            # One long output line per paragraph (LL), no hyphenation (HY=0), no bold/underline.
            r = subprocess.run(["groff", "-Tutf8", "-man", "-t", "-k", "-rLL=1000n", "-rHY=0",
                                "-rcR=1", "-P-cbou"],
                               input=src, capture_output=True, env={**os.environ, "GROFF_NO_SGR": "1",
                                                                    "LC_ALL": "C.UTF-8"})
            if r.returncode != 0:
                sys.exit(f"groff failed on {package}:{f}: {r.stderr.decode(errors='replace')[:300]}")
            text = r.stdout.decode("utf-8", errors="replace")
            text = re.sub(r".\x08", "", text)   # any leftover overstrike
            # tbl boxes: drop pure rule lines, turn vertical bars into " | "
            rows = []
            for l in text.split("\n"):
                if l.strip() and set(l) <= BOX_CHARS | {" "}:
                    continue
                if set(l) & BOX_CHARS:
                    l = " | ".join(c.strip() for c in re.split(r"[│┃║]", l)).strip(" |")
                    l = re.sub(r"[─━═┼┬┴├┤┌┐└┘╪╞╡]", "", l)
                rows.append(l)
            text = "\n".join(rows)
            lines = [l for l in text.split("\n") if l.strip()]
            if len(lines) < 3:
                continue
            # drop the running header and footer lines ("LS(1)  User Commands  LS(1)")
            text = "\n".join(text.strip("\n").split("\n")[1:-1])
            chunks.append(normalise(text))
    return normalise("\n\n".join(chunks))


# ---------- King James Bible ----------
def kjv_doc():
    text = open(os.path.join(work, "kjv.raw"), encoding="utf-8", errors="replace").read()
    return normalise(text)


# ---------- the documents: output name -> (package, builder) ----------
PY_HTML = pkg("python3.11-doc", "usr", "share", "doc", "python3.11", "html")
DEBREF = pkg("debian-reference-en", "usr", "share", "debian-reference")
FAQ = pkg("debian-faq", "usr", "share", "doc", "debian", "FAQ")
GNU = pkg("gnu-standards", "usr", "share", "doc", "gnu-standards")
DOCS = {
    "bash-reference-manual.txt": ("bash-doc", lambda: html_doc(
        [pkg("bash-doc", "usr", "share", "doc", "bash", "bashref.html")])),
    "debian-faq.txt": ("debian-faq", lambda: html_doc(reading_order(os.path.join(FAQ, "index.en.html"),
        [p for p in sorted_html(FAQ) if p.endswith(".en.html") and not p.endswith("index.en.html")]))),
    "debian-reference.txt": ("debian-reference-en", lambda: html_doc(reading_order(
        os.path.join(DEBREF, "index.en.html"),
        [p for p in sorted_html(DEBREF) if re.search(r"/(pr01|ch\d\d)\.en\.html$", p)]))),
    "gnu-coding-standards.txt": ("gnu-standards", lambda: html_doc([os.path.join(GNU, "standards.html")])),
    "gnu-maintainer-information.txt": ("gnu-standards", lambda: html_doc([os.path.join(GNU, "maintain.html")])),
    "king-james-bible.txt": ("bible-kjv-text", kjv_doc),
    "linux-man-pages-1-4-5-6-7-8.txt": ("manpages", lambda: man_doc("manpages", ["1", "4", "5", "6", "7", "8"])),
    "linux-man-pages-2-3.txt": ("manpages-dev", lambda: man_doc("manpages-dev", ["2", "3"])),
}
for section, title in [("faq", "faq"), ("howto", "howto"), ("library", "library-reference"),
                       ("reference", "language-reference"), ("tutorial", "tutorial"),
                       ("extending", "extending-embedding"), ("using", "using")]:
    DOCS[f"python-{title}.txt"] = ("python3.11-doc", (lambda s=section: html_doc(reading_order(
        os.path.join(PY_HTML, s, "index.html"),
        [p for p in sorted_html(os.path.join(PY_HTML, s)) if not p.endswith("/index.html")]))))


# ---------- overlap filter against the evaluation haystacks ----------
N = 8
WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def shingles(words):
    return {" ".join(words[i:i + N]) for i in range(len(words) - N + 1)}


excl = set()
fdir = pkg("fortunes", "usr", "share", "games", "fortunes")
if not os.path.isdir(fdir):
    sys.exit("fortunes package has no usr/share/games/fortunes")
excl_files = sorted(os.path.join(fdir, f) for f in os.listdir(fdir)
                    if not f.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(fdir, f)))
lic = "/usr/share/common-licenses"
if not os.path.isdir(lic):
    sys.exit(f"{lic} not found (Debian base-files): needed to keep license texts out of the corpus")
excl_files += sorted(os.path.join(lic, f) for f in os.listdir(lic) if os.path.isfile(os.path.join(lic, f)))
excl_hash = hashlib.sha256()
for p in excl_files:
    data = open(p, "rb").read()
    excl_hash.update(os.path.basename(p).encode() + b"\0" + hashlib.sha256(data).digest())
    for block in data.decode("utf-8", errors="replace").split("\n%\n"):
        excl |= shingles(WORD.findall(block.lower()))


def drop_overlap(text):
    """Drop lines whose words are >=50% covered by 8-grams found in the exclusion set."""
    lines = text.split("\n")
    words, owner = [], []
    for i, l in enumerate(lines):
        w = WORD.findall(l.lower())
        words += w
        owner += [i] * len(w)
    covered = [False] * len(words)
    for i in range(len(words) - N + 1):
        if " ".join(words[i:i + N]) in excl:
            for j in range(i, i + N):
                covered[j] = True
    total, cov = [0] * len(lines), [0] * len(lines)
    for k, i in enumerate(owner):
        total[i] += 1
        cov[i] += covered[k]
    drop = {i for i in range(len(lines)) if total[i] and cov[i] * 2 >= total[i]}
    # a short line (< N words, e.g. a heading or a list item) next to a dropped line goes too
    nonempty = [i for i in range(len(lines)) if lines[i].strip()]
    extra = {i for k, i in enumerate(nonempty) if i not in drop and 0 < total[i] < N and
             ((k > 0 and nonempty[k - 1] in drop) or (k + 1 < len(nonempty) and nonempty[k + 1] in drop))}
    drop |= extra
    keep = [l for i, l in enumerate(lines) if i not in drop]
    return normalise("\n".join(keep)), len(drop)


# ---------- build ----------
os.makedirs(out, exist_ok=True)
for f in os.listdir(out):   # stale outputs of an older recipe
    if f.endswith(".txt") and f not in DOCS:
        os.remove(os.path.join(out, f))
entries = []
for name in sorted(DOCS):
    package, build = DOCS[name]
    text, dropped = drop_overlap(build())
    data = text.encode("utf-8")
    if len(data) < 10000:
        sys.exit(f"{name}: only {len(data)} bytes of text from {package}: conversion broken?")
    with open(os.path.join(out, name), "wb") as fh:
        fh.write(data)
    entries.append({"name": name, "package": package, "version": versions[package],
                    "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                    "lines_dropped_overlap": dropped})
    print(f"  {name:38s} {len(data):>10,d} bytes  ({package} {versions[package]}; "
          f"{dropped} lines dropped as haystack overlap)", file=sys.stderr)

recipe = hashlib.sha256("".join(f"{e['name']} {e['sha256']}\n" for e in entries).encode()).hexdigest()
manifest = {
    "description": "Plain-text training corpus for the learned KV-cache indexer; built by "
                   "scripts/fetch_training_data.sh. Excludes the eval haystacks (Debian fortunes, "
                   "/usr/share/common-licenses).",
    "recipe_sha256": recipe,
    "recipe_definition": "sha256 of the concatenated lines '<name> <sha256>\\n' over files sorted by name",
    "total_bytes": sum(e["bytes"] for e in entries),
    "files": entries,
    "packages": dict(sorted(versions.items())),
    "tools": {"groff": groff_version, "python": sys.version.split()[0]},
    "overlap_filter": {"shingle_words": N, "drop_line_if_covered_fraction_at_least": 0.5,
                       "exclusion_corpus_sha256": excl_hash.hexdigest(),
                       "exclusion_sources": ["fortunes " + versions["fortunes"], lic]},
    "script_sha256": script_sha,
}
with open(os.path.join(out, "MANIFEST.json"), "w", encoding="utf-8") as fh:
    json.dump(manifest, fh, indent=2, sort_keys=False)
    fh.write("\n")
print(f"fetch_training_data: wrote {len(entries)} files to {out}")
print(f"  files: {len(entries)}  total bytes: {manifest['total_bytes']}  recipe_sha256: {recipe}")
PY
