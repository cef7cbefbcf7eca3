# Sourced by scripts/serve and scripts/test: the project's virtualenv, with a lock installed.
# ensure_venv LOCKFILE: create .venv if missing, install LOCKFILE and the package (editable)
# unless this exact lock and pyproject.toml were installed already, then activate it.
ensure_venv() {
    local lock="$1" python="${PYTHON:-python3}" stamp digest
    if [ ! -x .venv/bin/python ]; then
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            echo "chat2api needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
            return 1
        }
        "$python" -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
    stamp=".venv/.installed-$(basename "$lock")"
    digest="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        python -m pip install -q -r "$lock" -e .
        echo "$digest" >"$stamp"
    fi
}
