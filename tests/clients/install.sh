#!/usr/bin/env bash
# Install the real CLI clients the `clients` tests drive, at pinned versions: about 740 MB from npm, once.
# They go to a cache outside the clone, ${XDG_CACHE_HOME:-~/.cache}/cliproxy/clients, so every clone and
# worktree of the repository shares one copy; CLIENTS_PREFIX chooses another place.
#
#   tests/clients/install.sh            # idempotent: does nothing when every CLI is present at its version
#   CLIENTS_PREFIX=/elsewhere tests/clients/install.sh
#   tests/clients/install.sh --prefix   # print where the CLIs are (or would be) installed
#
# Packages come from the npm registry with --ignore-scripts: no third-party install script runs. The one
# postinstall the clients need is Claude Code's own `install.cjs`, which only copies the platform's native
# binary (an optional dependency) over its placeholder `bin/claude.exe`; it is run explicitly below. Codex
# resolves its native binary from its optional dependency at run time, Gemini CLI is a plain JS bundle.
# Exits 0 with every `<prefix>/bin/{claude,gemini,codex} --version` working, non-zero otherwise.
set -euo pipefail

if [[ -n "${CLIENTS_PREFIX:-}" ]]; then
  PREFIX="$CLIENTS_PREFIX"
else
  PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/cliproxy/clients"
  # No writable cache (a read-only HOME): keep them in the clone, as ignored files.
  existing="$PREFIX"
  while [[ ! -e "$existing" ]]; do existing="$(dirname "$existing")"; done
  if [[ ! -d "$existing" || ! -w "$existing" ]]; then
    PREFIX="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.clients"
  fi
fi
if [[ "${1:-}" == "--prefix" ]]; then
  echo "$PREFIX"
  exit 0
fi

CLAUDE_VERSION="2.1.197"
GEMINI_VERSION="0.61.0"
CODEX_VERSION="0.169.0"

PACKAGES=(
  "@anthropic-ai/claude-code@$CLAUDE_VERSION"
  "@google/gemini-cli@$GEMINI_VERSION"
  "@openai/codex@$CODEX_VERSION"
)

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install.sh: '$tool' not found on PATH; cannot install the real clients" >&2
    exit 3
  fi
done

# Prints the output of `<bin> --version` run in a throwaway, clean environment (the CLIs write to HOME).
probe() {
  local bin="$PREFIX/bin/$1" home
  [[ -x "$bin" ]] || return 1
  home="$(mktemp -d)"
  local out rc=0
  out="$(env -i PATH="$PREFIX/bin:$(dirname "$(command -v node)"):/usr/bin:/bin" HOME="$home" TERM=dumb \
    LANG=C.UTF-8 timeout 60 "$bin" --version 2>/dev/null)" || rc=$?
  rm -rf "$home"
  [[ $rc -eq 0 ]] || return 1
  printf '%s\n' "$out"
}

pkg_version() {
  node -p "require(process.argv[1]).version" "$PREFIX/lib/node_modules/$1/package.json" 2>/dev/null
}

# Claude Code and Codex start natively in well under a second, so they are really run; Gemini CLI takes
# seconds just to parse its bundle, so its package version is read unless FULL is set (after an install).
installed_ok() {
  probe claude | grep -qF "$CLAUDE_VERSION (Claude Code)" &&
    probe codex | grep -qF "codex-cli $CODEX_VERSION" &&
    [[ -x "$PREFIX/bin/gemini" && "$(pkg_version @google/gemini-cli)" == "$GEMINI_VERSION" ]] &&
    { [[ -z "${FULL:-}" ]] || probe gemini | grep -qxF "$GEMINI_VERSION"; }
}

if installed_ok; then
  echo "install.sh: claude $CLAUDE_VERSION, gemini $GEMINI_VERSION, codex $CODEX_VERSION already in $PREFIX"
  exit 0
fi

# The test runner shows this line on the terminal: the download takes minutes and needs network access.
echo "install.sh: installing the real clients for tests/clients (Claude Code $CLAUDE_VERSION, Gemini CLI" \
  "$GEMINI_VERSION, Codex $CODEX_VERSION; about 740 MB from npm, once) into $PREFIX"
start=$SECONDS
mkdir -p "$PREFIX"
# --global with --prefix: binaries land in $PREFIX/bin, packages in $PREFIX/lib/node_modules.
npm install --global --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund --no-update-notifier \
  --loglevel=error "${PACKAGES[@]}"

CLAUDE_PKG="$PREFIX/lib/node_modules/@anthropic-ai/claude-code"
(cd "$CLAUDE_PKG" && node install.cjs)

if ! FULL=1 installed_ok; then
  echo "install.sh: installed, but a client does not report its pinned version:" >&2
  for b in claude gemini codex; do
    echo "  $b: $(probe "$b" || echo 'not runnable')" >&2
  done
  exit 1
fi
echo "install.sh: installed claude $CLAUDE_VERSION, gemini $GEMINI_VERSION, codex $CODEX_VERSION" \
  "into $PREFIX in $((SECONDS - start))s"
