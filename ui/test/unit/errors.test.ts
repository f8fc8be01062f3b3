// Uncaught page errors reach the Rust log (src/errors.ts), a few per session.
import { describe, expect, it } from 'vitest';
import { describeError, MAX_REPORTS, reportUncaughtErrors } from '../../src/errors';

/** A stand-in for `window` that dispatches the two events the module hears. */
function fakeWindow(): { target: Window; fire(type: string, init: Record<string, unknown>): void } {
  const events = new EventTarget();
  return {
    target: events as unknown as Window,
    fire(type, init) {
      events.dispatchEvent(Object.assign(new Event(type), init));
    },
  };
}

describe('describeError', () => {
  it('names the error and keeps its stack once', () => {
    const error = new TypeError('Attempted to assign to readonly property.');
    error.stack = 'assign@tauri://localhost/assets/index.js:3:24';
    expect(describeError(error, 'index.js:3:24')).toBe(
      'TypeError: Attempted to assign to readonly property.\nassign@tauri://localhost/assets/index.js:3:24 (at index.js:3:24)',
    );
    const v8 = new RangeError('too deep');
    v8.stack = 'RangeError: too deep\n    at f (app.js:1:1)';
    expect(describeError(v8)).toBe('RangeError: too deep\n    at f (app.js:1:1)');
  });

  it('turns non-errors into text', () => {
    expect(describeError('plain')).toBe('plain');
    expect(describeError({ code: 7 })).toBe('{"code":7}');
    expect(describeError(undefined)).toBe('undefined');
  });
});

describe('reportUncaughtErrors', () => {
  it('reports uncaught errors and unhandled rejections as text', () => {
    const sent: string[] = [];
    const page = fakeWindow();
    reportUncaughtErrors(page.target, async (message) => {
      sent.push(message);
    });
    page.fire('error', { error: new Error('boom'), filename: 'app.js', lineno: 2, colno: 5 });
    page.fire('unhandledrejection', { reason: 'no snapshot' });
    expect(sent).toHaveLength(2);
    expect(sent[0]).toContain('Error: boom');
    expect(sent[0]).toContain('(at app.js:2:5)');
    expect(sent[1]).toBe('unhandled rejection: no snapshot');
  });

  it(`stops after ${MAX_REPORTS} reports, so a page throwing in a loop cannot flood the log`, () => {
    const sent: string[] = [];
    const page = fakeWindow();
    reportUncaughtErrors(page.target, async (message) => {
      sent.push(message);
    });
    for (let i = 0; i < MAX_REPORTS * 3; i++) page.fire('error', { error: new Error(`e${i}`) });
    expect(sent).toHaveLength(MAX_REPORTS);
  });

  it('survives a report that fails', async () => {
    const page = fakeWindow();
    let calls = 0;
    reportUncaughtErrors(page.target, () => {
      calls += 1;
      return Promise.reject(new Error('IPC gone'));
    });
    page.fire('error', { error: new Error('first') });
    page.fire('error', { error: new Error('second') });
    await Promise.resolve();
    expect(calls).toBe(2);
  });
});
