import { describe, expect, it } from 'vitest';
import { offsiteSettings, parseDestination } from '../../src/index.js';

const PUB = 'age1r4aswx3c4tv6vkxtnu5pmy6n7dv07p88napvu8peacc0ywss2e8s5eaa9s';

describe('off-site settings', () => {
  it('parses destinations by URL; custom endpoints default to path-style; nothing secret fits in one', () => {
    expect(parseDestination('s3://backups/scitex/nightly?endpoint=https://s3.example.org:9000&region=eu-1')).toMatchObject({
      bucket: 'backups',
      prefix: 'scitex/nightly/',
      endpoint: 'https://s3.example.org:9000',
      region: 'eu-1',
      pathStyle: true,
      label: 's3://backups/scitex/nightly at https://s3.example.org:9000',
    });
    expect(parseDestination('s3://backups?region=us-west-2')).toMatchObject({ prefix: '', pathStyle: false, endpoint: undefined });
    expect(() => parseDestination('s3://backups/x?endpoint=https://key:secret@host')).toThrow(/without credentials/);
    expect(() => parseDestination('s3://backups/x?secret_key=abc')).toThrow(/unknown setting secret_key/);
    expect(() => parseDestination('s3://backups/../x')).toThrow(/\.\./);
    expect(() => parseDestination('https://backups/x')).toThrow(/not an s3/);
  });

  it('reads SCITEX_DATA_REMOTE and _1.._9 and the recipients; refuses a secret key without echoing it', () => {
    const s = offsiteSettings({ SCITEX_DATA_REMOTE: 's3://one/a', SCITEX_DATA_REMOTE_2: 's3://two/b?endpoint=http://127.0.0.1:1', SCITEX_DATA_ENCRYPT_TO: `${PUB}, ${PUB}` });
    expect(s.destinations.map((d) => d.bucket)).toEqual(['one', 'two']);
    expect(s.recipients).toEqual([PUB]);
    const secret = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
    let msg = '';
    try {
      offsiteSettings({}, [secret]);
    } catch (err) {
      msg = (err as Error).message + ((err as { hint?: string }).hint ?? '');
    }
    expect(msg).toMatch(/SECRET key/);
    expect(msg).not.toContain(secret);
    expect(() => offsiteSettings({ SCITEX_DATA_REMOTE: 'not-a-url' })).toThrow(/SCITEX_DATA_REMOTE/);
  });
});
