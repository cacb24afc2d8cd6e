#!/usr/bin/env bash
# Runs every test: Rust unit and black-box tests, then the compatibility suite
# with the real socket.io-client v4 against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> module dependencies (no cycles)"
python3 tools/module-deps.py | tail -1

echo "==> building roomcast"
cargo build --workspace --bins --quiet

echo "==> Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi

echo "==> python-socketio client (tests/python/.venv, pinned)"
bash tests/python/setup.sh

echo "==> socket.io-client compatibility suite"
(cd tests/compat && npm ci --no-audit --no-fund --loglevel=error && npm test)

echo "==> python-socketio compatibility (reconnect after restart, access)"
(cd tests/python && .venv/bin/python -m unittest -v test_reconnect test_access)
