# Sourced by the scripts: makes .venv match uv.lock, installing uv itself if it is not on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV_VERSION=0.13.9

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "chatflow needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
  exit 1
fi

if command -v uv >/dev/null 2>&1; then
  uv=uv
else
  # uv lives in its own small venv: `uv sync` would remove it from the project's .venv.
  if [ ! -x .cache/uv/bin/uv ]; then
    "$python" -m venv .cache/uv
    .cache/uv/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  uv=.cache/uv/bin/uv
fi
export UV_PYTHON="$python"
"$uv" sync --frozen --quiet "$@"
