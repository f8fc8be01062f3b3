// A failed command reaches the user in their language: Rust answers with a
// code and an English detail, and the code picks the sentence.
import { describe, expect, it } from 'vitest';
import { translator } from '../../src/i18n';
import { errorText } from '../../src/ipc';

describe('errorText', () => {
  it('says a coded failure in the chosen language', () => {
    const refused = { code: 'notPending', message: 'only a pending approval request can be snoozed' };
    expect(errorText(refused, translator('zh-CN'))).toBe('只能稍后提醒待审批的申请');
    expect(errorText(refused, translator('en'))).toBe('Only a pending approval request can be snoozed');
  });

  it('adds the English detail where it names what failed', () => {
    const failed = { code: 'saveFailed', message: 'cannot write settings to /ro/tidings.toml: read-only' };
    expect(errorText(failed, translator('zh-CN'))).toBe(
      '设置无法保存 (cannot write settings to /ro/tidings.toml: read-only)',
    );
  });

  it('shows an unknown code or a plain string as it came, never as nothing', () => {
    expect(errorText({ code: 'fromTheFuture', message: 'new failure' }, translator('en'))).toBe('new failure');
    expect(errorText('plain reason', translator('en'))).toBe('plain reason');
  });
});
