#!/bin/sh
# Print the path of a Python 3.10 interpreter (the only version Lava 0.10 supports).
# Order: $PYTHON if set, then python3.10 on PATH, then pyenv's newest 3.10.x.
# Exits 1 with a message on stderr when none is found.
is310() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1
}
if [ -n "${PYTHON:-}" ]; then
    if is310 "$PYTHON"; then command -v "$PYTHON" || echo "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working Python 3.10 interpreter (Lava 0.10 needs 3.10)." >&2
    exit 1
fi
if command -v python3.10 >/dev/null 2>&1 && is310 python3.10; then
    # Resolve a pyenv shim to the real interpreter so the venv does not depend on PYENV_VERSION.
    python3.10 -c 'import sys; print(sys.executable)'; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -t. -k3 -n | tail -n 1)
    if [ -n "$v" ]; then
        p="$(pyenv root)/versions/$v/bin/python3.10"
        if is310 "$p"; then echo "$p"; exit 0; fi
    fi
fi
echo "error: no Python 3.10 found. Lava 0.10 supports only Python 3.10." >&2
echo "       Install one (e.g. 'pyenv install 3.10') or pass PYTHON=/path/to/python3.10." >&2
exit 1
