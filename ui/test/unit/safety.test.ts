// Static checks on the source: network strings are only ever rendered as
// text, and the page's CSP is the one Tauri enforces.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ui = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|tsx|html)$/.test(name) ? [path] : [];
  });
}

const files = [...sources(join(ui, 'src')), join(ui, 'index.html')];

describe('no HTML from strings', () => {
  for (const api of [
    'innerHTML',
    'outerHTML',
    'dangerouslySetInnerHTML',
    'insertAdjacentHTML',
    'document.write',
    'eval(',
    'new Function',
  ]) {
    it(`no source file uses ${api}`, () => {
      const offenders = files.filter((f) => readFileSync(f, 'utf8').includes(api));
      expect(offenders).toEqual([]);
    });
  }

  it('no source file renders a link to a string (<a href>); links go through open_item', () => {
    const offenders = files.filter((f) => /<a\s[^>]*href/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('only ipc.ts talks to Tauri', () => {
    const offenders = files.filter((f) => !f.endsWith('ipc.ts') && readFileSync(f, 'utf8').includes('@tauri-apps/api'));
    expect(offenders).toEqual([]);
  });
});

describe('content security policy', () => {
  const html = readFileSync(join(ui, 'index.html'), 'utf8');
  const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1] ?? '';
  const parse = (csp: string): Map<string, string> =>
    new Map(
      csp
        .split(';')
        .map((d) => d.trim())
        .filter(Boolean)
        .map((d) => {
          const [name, ...values] = d.split(/\s+/);
          return [name as string, values.join(' ')];
        }),
    );

  it('index.html carries a CSP without unsafe-inline or unsafe-eval', () => {
    expect(meta).not.toBe('');
    expect(meta).not.toContain('unsafe-inline');
    expect(meta).not.toContain('unsafe-eval');
    const csp = parse(meta);
    expect(csp.get('script-src')).toBe("'self'");
    expect(csp.get('style-src')).toBe("'self'");
    expect(csp.get('object-src')).toBe("'none'");
  });

  const tauriConf = join(ui, '..', 'src-tauri', 'tauri.conf.json');
  // Skipped (and reported as skipped) in a checkout without the Tauri shell.
  it.runIf(existsSync(tauriConf))(
    "matches the CSP in Tauri's config (frame-ancestors aside: a meta tag cannot set it)",
    () => {
      const conf = JSON.parse(readFileSync(tauriConf, 'utf8')) as { app: { security: { csp: string } } };
      const tauri = parse(conf.app.security.csp);
      tauri.delete('frame-ancestors');
      expect(parse(meta)).toEqual(tauri);
    },
  );
});
