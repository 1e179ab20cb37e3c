import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';

// Settings trees written in the styles of scitex-cloud's config/settings/ (auto-loader, shared, dev, prod; the
// pre-restructure files), evaluated by the real CLI once with a Python and once with the emulation forced.

const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
let root = '';
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

const INIT = `"""Django settings auto-loader for SciTeX Cloud."""
import os

env = os.getenv("SCITEX_CLOUD_ENV", "development").lower()

if env == "production":
    from .settings_prod import *
elif env == "development":
    from .settings_dev import *
else:
    print(f"Warning: Unknown SCITEX_CLOUD_ENV '{env}', defaulting to development")
    from .settings_dev import *
`;

// Noise on stdout, including braces and a fake answer, must not disturb the result.
const SHARED = `from pathlib import Path
import os
BASE_DIR = Path(__file__).resolve().parent.parent.parent
print('{"ok": false, "reason": "not me"}')
print("SciTeX Cloud settings loaded {")
`;

const DEV = `from .settings_shared import *

DEBUG = True

# Development database (PostgreSQL by default, SQLite fallback)
# Use SQLite: export SCITEX_CLOUD_USE_SQLITE_DEV=1
if os.environ.get("SCITEX_CLOUD_USE_SQLITE_DEV"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR
            / "data"
            / "db"
            / "sqlite"
            / "scitex_cloud_dev.db",
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.getenv("SCITEX_CLOUD_DB_NAME_DEV", "scitex_cloud_dev"),
            "USER": os.getenv("SCITEX_CLOUD_DB_USER_DEV", "scitex_dev"),
            "PASSWORD": os.getenv("SCITEX_CLOUD_DB_PASSWORD_DEV", "scitex_dev_2025"),
            "HOST": os.getenv("SCITEX_CLOUD_DB_HOST_DEV", "localhost"),
            "PORT": os.getenv("SCITEX_CLOUD_DB_PORT_DEV", "5432"),
            "ATOMIC_REQUESTS": True,
        }
    }
`;

const PROD = `from .settings_shared import *

DEBUG = False

if os.environ.get("SCITEX_CLOUD_USE_SQLITE_PROD"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "data" / "db" / "sqlite" / "scitex_cloud_prod.db",
        }
    }
else:
    DB_PASSWORD = os.environ.get("SCITEX_CLOUD_DB_PASSWORD_PROD")
    if DB_PASSWORD and DB_PASSWORD != "your_database_password_here":
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": os.environ.get("SCITEX_CLOUD_DB_NAME_PROD", "scitex_cloud_prod"),
                "USER": os.environ.get("SCITEX_CLOUD_DB_USER_PROD", "scitex_prod"),
                "PASSWORD": DB_PASSWORD,
                "HOST": os.environ.get("SCITEX_CLOUD_DB_HOST_PROD", "localhost"),
                "PORT": os.environ.get("SCITEX_CLOUD_DB_PORT_PROD", "5432"),
            }
        }
    else:
        # Local PostgreSQL for production testing (default credentials)
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "scitex_cloud_prod",
                "USER": "scitex_prod",
                "PASSWORD": "CHANGE_THIS_IN_PRODUCTION",
                "HOST": "localhost",
                "PORT": "5432",
            }
        }
`;

// Before the restructure: dev hard-coded SQLite at the root, prod used DB_* only with a real DB_PASSWORD.
const OLD_DEV = `import os
from .settings_shared import *

# Development database (SQLite)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "scitex_cloud_dev.db",
    }
}
`;
const OLD_PROD = `import os
from .settings_shared import *

if os.environ.get("DB_PASSWORD") and os.environ.get("DB_PASSWORD") != "your_database_password_here":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DB_NAME", "scitex_cloud_prod"),
            "USER": os.environ.get("DB_USER", "scitex_prod"),
            "PASSWORD": os.environ.get("DB_PASSWORD"),
            "HOST": os.environ.get("DB_HOST", "localhost"),
            "PORT": os.environ.get("DB_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(BASE_DIR, "data", "scitex_cloud_prod.db"),
        }
    }
`;

/** A project root the app user (and nobody) can read, with the given settings files and .env text. */
function tree(files: Record<string, string>, dotenv?: string): string {
  const r = tempDir('scitex-cfgapp-');
  fs.chmodSync(r, 0o755);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(r, rel)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(r, rel), text, { mode: 0o644 });
  }
  if (dotenv !== undefined) {
    // As deployed: .env is a symlink to a dotenv file elsewhere.
    fs.mkdirSync(path.join(r, 'secrets'), { mode: 0o755 });
    fs.writeFileSync(path.join(r, 'secrets', 'prod.env'), dotenv, { mode: 0o644 });
    fs.symlinkSync('secrets/prod.env', path.join(r, '.env'));
  }
  return r;
}

const current = (extra: Record<string, string> = {}) => ({ 'config/__init__.py': '', 'config/settings/__init__.py': INIT, 'config/settings/settings_shared.py': SHARED, 'config/settings/settings_dev.py': DEV, 'config/settings/settings_prod.py': PROD, ...extra });

interface Cfg {
  env: { value: string };
  database: { kind: string; path?: string; name?: { value: string; source: string; variable?: string }; user?: { value: string }; password?: { source: string; variable?: string } };
  settings: { source: string; python?: string; reason?: string; uid?: number; module: string };
  warnings: string[];
}

/** `config --json` through Python and through the emulation; both must succeed and name the same database. */
function both(r: string, env: Record<string, string> = {}, args: string[] = []): { py: Cfg; em: Cfg } {
  const run = (python: string) => {
    const res = cli(['--root', r, '--python', python, ...args, 'config', '--json'], { env });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    return (JSON.parse(res.stdout) as { config: Cfg }).config;
  };
  const py = run(PY);
  const em = run('/nonexistent/python3');
  expect(py.settings.source, JSON.stringify(py.settings)).toBe('python');
  expect(em.settings).toMatchObject({ source: 'emulated', reason: expect.stringContaining('/nonexistent/python3 not found') });
  expect(em.database).toEqual(py.database);
  expect(em.env.value).toBe(py.env.value);
  return { py, em };
}

describe('config names the database the app would use', () => {
  it('PRODUCTION from a symlinked .env with export lines; a password with # is kept whole', () => {
    root = tree(current(), 'export SCITEX_CLOUD_ENV=PRODUCTION\nexport SCITEX_CLOUD_DB_PASSWORD_PROD=abc#def\nexport SCITEX_CLOUD_DB_NAME_PROD="scitex_live" # the live one\n');
    const { py } = both(root);
    expect(py.env.value).toBe('prod');
    expect(py.database.kind).toBe('postgres');
    expect(py.database.name).toEqual({ value: 'scitex_live', source: '.env', variable: 'SCITEX_CLOUD_DB_NAME_PROD' });
    expect(py.database.password).toMatchObject({ source: '.env', variable: 'SCITEX_CLOUD_DB_PASSWORD_PROD' });
    expect(py.settings).toMatchObject({ python: PY, module: 'config.settings' });
  });

  it.each([
    ['no password', 'export SCITEX_CLOUD_ENV=production\nexport SCITEX_CLOUD_DB_NAME_PROD=ignored_db\n'],
    ['the placeholder password', 'export SCITEX_CLOUD_ENV=production\nexport SCITEX_CLOUD_DB_PASSWORD_PROD=your_database_password_here\nexport SCITEX_CLOUD_DB_NAME_PROD=ignored_db\nexport SCITEX_CLOUD_DB_USER_PROD=ignored_user\n'],
  ])('prod with %s uses the built-in credentials and ignores the other _PROD variables', (_what, dotenv) => {
    root = tree(current(), dotenv);
    const { py } = both(root);
    expect(py.database.name?.value).toBe('scitex_cloud_prod');
    expect(py.database.user?.value).toBe('scitex_prod');
  });

  it('SCITEX_CLOUD_USE_SQLITE_DEV=0 still means SQLite, with a loud warning either way', () => {
    root = tree(current(), 'SCITEX_CLOUD_USE_SQLITE_DEV=0\n');
    const { py, em } = both(root);
    expect(py.database).toEqual({ kind: 'sqlite', path: path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), switch: { value: '0', source: '.env', variable: 'SCITEX_CLOUD_USE_SQLITE_DEV' } });
    for (const c of [py, em]) expect(c.warnings.join('\n')).toMatch(/SCITEX_CLOUD_USE_SQLITE_DEV=0 looks like "off"/);
  });

  it('empty PORT and PASSWORD mean the default port and no password, as Django reads them', () => {
    root = tree(current(), 'SCITEX_CLOUD_DB_PORT_DEV=\nSCITEX_CLOUD_DB_PASSWORD_DEV=\nSCITEX_CLOUD_DB_HOST_DEV=db.internal # the db host\n');
    const { py } = both(root);
    expect(py.database).toMatchObject({ port: { value: 5432 }, password: { value: '(none)' }, host: { value: 'db.internal', source: '.env' } });
  });

  it('an unknown SCITEX_CLOUD_ENV means development, like the auto-loader', () => {
    root = tree(current());
    const { py, em } = both(root, { SCITEX_CLOUD_ENV: 'prod', SCITEX_CLOUD_DB_PASSWORD_PROD: 'x' });
    expect(py.env.value).toBe('dev');
    expect(py.database.name?.value).toBe('scitex_cloud_dev');
    expect(em.warnings.join('\n')).toMatch(/SCITEX_CLOUD_ENV=prod is neither/);
  });

  it.each(['DJANGO_SETTINGS_MODULE', 'SCITEX_CLOUD_DJANGO_SETTINGS_MODULE'])('%s=config.settings.settings_prod wins over SCITEX_CLOUD_ENV', (variable) => {
    root = tree(current());
    const { py } = both(root, { [variable]: 'config.settings.settings_prod', SCITEX_CLOUD_ENV: 'development', SCITEX_CLOUD_DB_PASSWORD_PROD: 's3cret', SCITEX_CLOUD_DB_NAME_PROD: 'from_env' });
    expect(py.env.value).toBe('prod');
    expect(py.settings.module).toBe('config.settings.settings_prod');
    expect(py.database.name).toEqual({ value: 'from_env', source: 'environment', variable: 'SCITEX_CLOUD_DB_NAME_PROD' });
  });

  it('--env prod loads the prod settings through the auto-loader whatever SCITEX_CLOUD_ENV says', () => {
    root = tree(current(), 'export SCITEX_CLOUD_ENV=development\nexport SCITEX_CLOUD_DB_PASSWORD_PROD=pw\nexport SCITEX_CLOUD_DB_NAME_PROD=flag_db\n');
    const { py } = both(root, {}, ['--env', 'prod']);
    expect(py.env).toEqual({ value: 'prod', source: 'flag' });
    expect(py.database.name?.value).toBe('flag_db');
  });

  it('DJANGO_SETTINGS_MODULE comes before SCITEX_CLOUD_DJANGO_SETTINGS_MODULE', () => {
    root = tree(current());
    const { py } = both(root, { DJANGO_SETTINGS_MODULE: 'config.settings.settings_dev', SCITEX_CLOUD_DJANGO_SETTINGS_MODULE: 'config.settings.settings_prod' });
    expect(py.env.value).toBe('dev');
    expect(py.database.name?.value).toBe('scitex_cloud_dev');
  });

  it('an old settings_dev.py that hard-codes SQLite means SQLite at the root, whatever the switches say', () => {
    root = tree({ 'config/settings/settings_shared.py': SHARED, 'config/settings/settings_dev.py': OLD_DEV, 'config/settings/settings_prod.py': OLD_PROD }, 'export SCITEX_CLOUD_DB_NAME_DEV=pg_db\nexport SCITEX_CLOUD_USE_SQLITE_DEV=\n');
    const { py } = both(root);
    expect(py.database).toEqual({ kind: 'sqlite', path: path.join(root, 'scitex_cloud_dev.db'), switch: { value: 'hard-coded', source: 'settings', variable: 'config/settings/settings_dev.py' } });
  });

  it('the old settings_prod.py: SQLite in data/ without DB_PASSWORD, PostgreSQL from DB_* with it', () => {
    root = tree({ 'config/settings/settings_shared.py': SHARED, 'config/settings/settings_dev.py': OLD_DEV, 'config/settings/settings_prod.py': OLD_PROD });
    expect(both(root, {}, ['--env', 'prod']).py.database.path).toBe(path.join(root, 'data/scitex_cloud_prod.db'));
    const { py } = both(root, { DB_PASSWORD: 'pw#1', DB_NAME: 'legacy_db' }, ['--env', 'prod']);
    expect(py.database.name).toEqual({ value: 'legacy_db', source: 'environment', variable: 'DB_NAME' });
  });

  it('a settings module whose import fails falls back to the emulation and says why', () => {
    root = tree(current({ 'config/settings/settings_prod.py': `from scitex import logging\n${PROD}` }), 'export SCITEX_CLOUD_ENV=production\nexport SCITEX_CLOUD_DB_PASSWORD_PROD=p\nexport SCITEX_CLOUD_DB_NAME_PROD=prod_db\n');
    const res = cli(['--root', root, '--python', PY, 'config', '--json']);
    expect(res.code).toBe(0);
    const c = (JSON.parse(res.stdout) as { config: Cfg }).config;
    expect(c.settings).toMatchObject({ source: 'emulated', reason: expect.stringMatching(/ModuleNotFoundError: No module named 'scitex'/) });
    expect(c.database.name?.value).toBe('prod_db');
    const human = cli(['--root', root, '--python', PY, 'config']);
    expect(human.stdout).toMatch(/settings +config\.settings, emulated: .*No module named 'scitex'/);
  });

  it('uses the app virtualenv by default', () => {
    root = tree(current());
    fs.mkdirSync(path.join(root, '.venv/bin'), { recursive: true, mode: 0o755 });
    fs.symlinkSync(PY, path.join(root, '.venv/bin/python'));
    const res = cli(['--root', root, 'config', '--json']);
    const c = (JSON.parse(res.stdout) as { config: Cfg }).config;
    expect(c.settings).toMatchObject({ source: 'python', python: path.join(root, '.venv/bin/python') });
  });
});

describe('the settings run as their owner, never as root', () => {
  it.skipIf(process.getuid?.() !== 0)('settings owned by uid 65534 are evaluated as uid 65534 with no extra groups', () => {
    const probe = `import os\nopen(os.path.join(os.path.dirname(__file__), "..", "..", "out", "who"), "w").write("%d %d %s" % (os.getuid(), os.getgid(), sorted(os.getgroups())))\n`;
    root = tree(current({ 'config/settings/settings_dev.py': probe + DEV }));
    fs.mkdirSync(path.join(root, 'out'), { mode: 0o755 });
    for (const p of ['out', 'config', 'config/settings', ...fs.readdirSync(path.join(root, 'config/settings')).map((n) => `config/settings/${n}`)]) fs.chownSync(path.join(root, p), 65534, 65534);
    const { py } = both(root);
    expect(fs.readFileSync(path.join(root, 'out/who'), 'utf8')).toMatch(/^65534 65534 \[(65534)?\]$/);
    expect(py.settings.uid).toBe(65534);
  });

  it.skipIf(process.getuid?.() !== 0)('root-owned settings are still not run as root', () => {
    root = tree(current({ 'config/settings/settings_dev.py': `import os, sys\nsys.stderr.write("uid=%d\\n" % os.getuid())\n${DEV}` }));
    const { py } = both(root);
    expect(py.settings.uid).not.toBe(0);
  });
});
