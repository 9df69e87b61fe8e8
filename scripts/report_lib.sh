# Shared by the report scripts (sourced, not run): fetch what a sweep needs, build, and run
# one resumable sweep into data/results/ merged into a report directory.
#
#   source scripts/report_lib.sh; report_prepare "$@"
#   report_sweep CONFIG.json RESULTS.jsonl REPORT_DIR "TITLE" [EVAL RUN OPTIONS, e.g. --model PATH]

# Fetches the model and the haystack, builds indexmem; SAMPLES (optional $1) overrides the configs'.
report_prepare() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    scripts/setup.sh
    scripts/setup.sh haystack
    swift build -c release --product indexmem
    mkdir -p data/results
    report_samples=()
    if [[ $# -ge 1 ]]; then report_samples=(--samples "$1"); fi
    report_start=$SECONDS
}

# Runs (or resumes) one sweep and merges its results into a report.
report_sweep() {
    local config="$1" results="$2" dir="$3" title="$4"
    shift 4
    .build/release/indexmem eval run --config "$config" "${report_samples[@]}" "$@" --out "$results"
    .build/release/indexmem eval merge "$results" --report "$dir" --title "$title"
}
