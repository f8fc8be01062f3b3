// The built dashboard in real Chromium, with Tauri's IPC mocked in the page
// (test/browser/page-mock.ts). Each test states one behaviour a user relies
// on; screenshots of every screen in both languages go to
// test-artifacts/ui/ for people to look at.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ARTIFACTS, SCREENS, launch, openApp, serveDist, testScripts } from './harness.mjs';

let server;
let browser;
let script;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const scripts = await testScripts();
  script = scripts.mock;
  [server, browser] = await Promise.all([serveDist(scripts.routes), launch()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const open = (options) => openApp(browser.context, server.url, script, options);
const rows = (page, feed) => page.locator(`[data-testid="row"][data-feed="${feed}"]`);
const calls = (page, cmd) =>
  page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const tab = async (page, id) => {
  await page.click(`[role="tab"][data-tab="${id}"]`);
  await page.waitForSelector(`[role="tab"][data-tab="${id}"][aria-selected="true"]`);
};
const go = async (page, screen) => {
  await page.click(`[data-testid="nav-${screen}"]`);
  await page.waitForSelector(`.app[data-screen="${screen}"]`);
};
const fixtureCount = (page, feed) => page.evaluate((f) => (window.__mock.snapshot.feeds[f] ?? []).length, feed);

describe('every screen in both languages', () => {
  for (const language of ['zh-CN', 'en']) {
    it(`renders every screen in ${language} and saves a screenshot of each`, async () => {
      const { page, problems } = await open({ language });
      assert.equal(await page.getAttribute('html', 'lang'), language);
      for (const screen of SCREENS) {
        await go(page, screen);
        await page.waitForTimeout(50); // one more frame for the list's measured height
        await page.screenshot({ path: join(ARTIFACTS, `${screen}.${language}.png`) });
      }
      await page.emulateMedia({ colorScheme: 'dark' });
      for (const screen of ['overview', 'inventory', 'system']) {
        await go(page, screen);
        await page.screenshot({ path: join(ARTIFACTS, `${screen}.${language}.dark.png`) });
      }
      assert.deepEqual(problems, []);
      await page.close();
    });
  }

  it('shows Chinese when the system locale is Chinese and the setting is "follow system"', async () => {
    const zh = await launch({ locale: 'zh-CN' });
    try {
      const { page } = await openApp(zh.context, server.url, script, { language: 'auto' });
      assert.equal(await page.textContent('[data-testid="nav-inventory"] .nav-label'), '库存');
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    } finally {
      await zh.close();
    }
  });

  it('switches language from the top bar and saves the choice', async () => {
    const { page } = await open({ language: 'en' });
    assert.equal(await page.textContent('[data-testid="nav-orders"] .nav-label'), 'Orders');
    await page.selectOption('.topbar select', 'zh-CN');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="nav-orders"] .nav-label')?.textContent === '订单',
    );
    const saved = await calls(page, 'set_settings');
    assert.equal(saved.at(-1).settings.language, 'zh-CN');
    await page.close();
  });
});

describe('layout', () => {
  it('fills the window below the top bar when no banner is shown', async () => {
    const { page, problems } = await open({ fixture: 'empty' });
    for (const screen of ['overview', 'inventory', 'approvals']) {
      await go(page, screen);
      const sizes = await page.evaluate(() => ({
        window: window.innerHeight,
        banners: getComputedStyle(document.querySelector('.banners')).display,
        top: document.querySelector('.topbar').getBoundingClientRect().height,
        body: document.querySelector('.body').getBoundingClientRect().height,
      }));
      assert.equal(sizes.banners, 'none', 'the empty fixture shows no banner');
      assert.equal(sizes.top + sizes.body, sizes.window, `${screen}: ${JSON.stringify(sizes)}`);
    }
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('page errors', () => {
  it('reports an uncaught error to Rust through report_ui_error', async () => {
    const { page, problems } = await open();
    await page.evaluate(() => {
      setTimeout(() => {
        throw new Error('boom from the test');
      });
    });
    await page.waitForFunction(() =>
      window.__mock.calls.some(
        (c) => c.cmd === 'report_ui_error' && String(c.args.message).includes('boom from the test'),
      ),
    );
    assert.ok(
      problems.some((p) => p.includes('boom from the test')),
      'the page error happened',
    );
    await page.close();
  });
});

describe('feeds render the events they are given', () => {
  it('inventory shows each change with product, ± change and old → new, low stock highlighted', async () => {
    const { page } = await open({ hash: 'inventory' });
    assert.equal(await rows(page, 'inventory').count(), await fixtureCount(page, 'inventory'));
    const text = await page.textContent('main');
    for (const s of [
      '不锈钢保温杯 500ml',
      'USB-C Charging Cable 1 m',
      'Wireless Mouse M330',
      '+100',
      '采购入库 PO-2026-000812',
      '王伟',
    ]) {
      assert.ok(text.includes(s), `inventory shows ${s}`);
    }
    // Threshold 10: 8 (cable) and 2 (mouse) are low; 14 (tea) is not.
    const low = await page.locator('[data-testid="row"] .grid-inv.low').allTextContents();
    assert.equal(low.length, 2);
    assert.ok(low.some((r) => r.includes('USB-C Charging Cable')) && low.some((r) => r.includes('Wireless Mouse')));
    await page.close();
  });

  it('inventory filters by product name or id, and to low stock only', async () => {
    const { page } = await open({ hash: 'inventory' });
    await page.fill('input[type="search"]', '绿茶');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"]').length === 2);
    await page.fill('input[type="search"]', 'p-55210');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"]').length === 1);
    assert.match(await rows(page, 'inventory').first().textContent(), /Wireless Mouse M330/);
    await page.fill('input[type="search"]', '');
    await page.check('.legend input[type="checkbox"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"]').length === 2);
    assert.equal(await page.locator('[data-testid="row"] .grid-inv.low').count(), 2);
    await page.close();
  });

  it('orders show number, type, old → new status and customer', async () => {
    const { page } = await open({ hash: 'orders' });
    assert.equal(await rows(page, 'orders').count(), await fixtureCount(page, 'orders'));
    const row = page.locator('[data-testid="row"]', { hasText: 'SO-2026-000123' });
    const text = await row.textContent();
    assert.match(text, /Sales/);
    assert.match(text, /Pending.*→.*Confirmed/);
    assert.match(text, /上海星辰贸易有限公司/);
    await page.close();
  });

  it('approvals list pending requests, results, and mine', async () => {
    const { page } = await open({ hash: 'approvals' });
    const pending = await page.locator('[data-testid="row"]').allTextContents();
    // pay-77 was approved and r-9 rejected: three requests still wait.
    assert.equal(pending.length, 3);
    assert.ok(pending.some((r) => r.includes('SO-2026-000130') && r.includes('陈静')));
    assert.ok(!pending.some((r) => r.includes('PAY-2026-000077')));
    await tab(page, 'results');
    const results = await page.locator('[data-testid="row"]').allTextContents();
    assert.equal(results.length, 2);
    assert.ok(results.some((r) => r.includes('RT-2026-000009') && r.includes('Rejected')));
    await tab(page, 'mine');
    const mine = await page.locator('[data-testid="row"]').allTextContents();
    // Mine (u-1001): asked for RF-31 and RT-9 (+ its rejection), decides ADJ-5, approved PAY-77.
    for (const n of ['RF-2026-000031', 'ADJ-2026-000005', 'RT-2026-000009', 'PAY-2026-000077']) {
      assert.ok(
        mine.some((r) => r.includes(n)),
        `mine shows ${n}`,
      );
    }
    assert.ok(!mine.some((r) => r.includes('SO-2026-000130')));
    await page.close();
  });

  it('a pending approval request snoozes from the Approvals screen', async () => {
    const { page } = await open({ hash: 'approvals' });
    const row = page.locator('[data-testid="row"]', { hasText: 'SO-2026-000130' });
    await row.locator('select').selectOption('60');
    await row.locator('[data-snoozed]').waitFor();
    assert.match(await row.textContent(), /Reminds/);
    const snoozed = await calls(page, 'snooze');
    assert.equal(snoozed.length, 1);
    assert.deepEqual(snoozed[0].howLong, { minutes: 60 });
    await page.close();
  });

  it('finance shows amounts as yuan in the locale, overdue highlighted', async () => {
    for (const [language, amount] of [
      ['en', '¥128,450.50'],
      ['zh-CN', '¥128,450.50'],
    ]) {
      const { page } = await open({ hash: 'finance', language });
      assert.equal(await rows(page, 'finance').count(), await fixtureCount(page, 'finance'));
      assert.ok((await page.textContent('main')).includes(amount), `${language} shows ${amount}`);
      const overdue = await page.locator('.grid-fin.overdue').allTextContents();
      assert.equal(overdue.length, 1);
      assert.match(overdue[0], /PM-2026-000390/);
      assert.match(overdue[0], /¥56,800\.00/);
      await page.close();
    }
  });

  it('system shows maintenance time and duration, and a critical banner until acknowledged', async () => {
    const { page } = await open({ hash: 'system', language: 'zh-CN' });
    assert.equal(await rows(page, 'system').count(), await fixtureCount(page, 'system'));
    const maintenance = await page.locator('[data-testid="row"]', { hasText: '数据库升级维护' }).textContent();
    assert.match(maintenance, /1 小时 30 分钟/);
    assert.match(maintenance, /\d{4}\/\d{2}\/\d{2}/);
    const banner = page.locator('.banner-critical');
    assert.match(await banner.textContent(), /支付网关响应超时/);
    await go(page, 'orders');
    assert.equal(await banner.count(), 1, 'the banner stays on other screens');
    await banner.locator('button').click();
    await page.waitForSelector('.banner-critical', { state: 'detached' });
    const acked = await calls(page, 'acknowledge');
    assert.equal(acked.length, 1);
    assert.match(acked[0].itemId, /^system#/);
    await page.close();
  });

  it('data changes and broadcasts show their events', async () => {
    const { page } = await open({ hash: 'data' });
    assert.equal(await rows(page, 'data').count(), await fixtureCount(page, 'data'));
    const data = await page.textContent('main');
    assert.ok(data.includes('Hangzhou Lakeside Foods') && data.includes('旧供应商 A') && data.includes('"price"'));
    await go(page, 'broadcast');
    assert.equal(await rows(page, 'broadcast').count(), await fixtureCount(page, 'broadcast'));
    assert.ok((await page.textContent('main')).includes('本周五下午 3 点在三楼会议室集合'));
    await page.close();
  });

  it('my notifications: read/unread, mark all read, and the action goes through open_item', async () => {
    const { page } = await open({ hash: 'mine' });
    assert.equal(await rows(page, 'mine').count(), await fixtureCount(page, 'mine'));
    assert.ok((await page.locator('[data-testid="row"] .dot.on').count()) > 0);
    await page.click('button:has-text("查看订单")');
    const opened = await calls(page, 'open_item');
    assert.equal(opened.length, 1);
    assert.match(opened[0].itemId, /^user:u-1001:notifications#/);
    assert.equal(new URL(page.url()).pathname, '/', 'the page itself never navigates');
    await page.click('button:has-text("Mark all read")');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"] .dot.on').length === 0);
    assert.deepEqual(await calls(page, 'mark_all_read'), [{ feed: 'mine' }]);
    // The window title counts what is still unread elsewhere.
    const unread = await page.evaluate(() =>
      Object.entries(window.__mock.snapshot.unread).reduce((n, [f, c]) => n + (f === 'mine' ? 0 : c), 0),
    );
    // The title follows the state on the next render: wait for it, then check it.
    await page
      .waitForFunction((want) => document.title === want, `(${unread}) Tidings`, { timeout: 5_000 })
      .catch(() => {});
    assert.equal(await page.title(), `(${unread}) Tidings`);
    await page.close();
  });

  it('overview shows counters, latest events and the pending approvals', async () => {
    const { page } = await open({ hash: 'overview' });
    const text = await page.textContent('main');
    assert.ok(text.includes('SO-2026-000123'));
    assert.equal(await page.textContent('.ov-pending .big'), '3');
    await page.close();
  });
});

describe('settings', () => {
  it('saves edited settings through set_settings, and points at a bad field without saving', async () => {
    const { page } = await open({ hash: 'settings' });
    await page.fill('#f-quietStart', '25:00');
    await page.click('button[type="submit"]');
    await page.waitForSelector('#f-quietStart-error');
    assert.equal(await page.getAttribute('#f-quietStart', 'aria-invalid'), 'true');
    assert.deepEqual(await calls(page, 'set_settings'), []);

    await page.fill('#f-quietStart', '21:30');
    await page.fill('#f-lowStockThreshold', '25');
    await page.selectOption('#f-profile', 'warehouse');
    await page.uncheck('input[aria-label="Orders · Shown"]');
    await page.click('button[type="submit"]');
    await page.waitForSelector('.form-status .ok-text');
    const [saved] = await calls(page, 'set_settings');
    assert.equal(saved.settings.quietHours.start, '21:30');
    assert.equal(saved.settings.lowStockThreshold, 25);
    assert.equal(saved.settings.profile, 'warehouse');
    assert.equal(saved.settings.feeds.orders.enabled, false);
    // The new threshold applies at once: 12 and 14 join 8 and 2 as low stock.
    await go(page, 'inventory');
    assert.equal(await page.locator('[data-testid="row"] .grid-inv.low').count(), 4);
    await page.close();
  });

  it("edits an approval request's ERP page per resource type, refusing one that leads off the ERP", async () => {
    const { page } = await open({ hash: 'settings' });
    const order = page.locator('[id="f-approvalUrl.order"]');
    assert.equal(await order.inputValue(), '/approvals/{resourceId}');
    await order.fill('//evil.example/approvals');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[id="f-approvalUrl.order-error"]');
    assert.deepEqual(await calls(page, 'set_settings'), []);

    await order.fill('/erp/approve?id={resourceId}');
    await page.locator('[id="f-approvalUrl.refund"]').fill('');
    await page.click('button[type="submit"]');
    await page.waitForSelector('.form-status .ok-text');
    const [saved] = await calls(page, 'set_settings');
    assert.equal(saved.settings.approvalUrls.order, '/erp/approve?id={resourceId}');
    assert.equal('refund' in saved.settings.approvalUrls, false, 'an emptied page means no button');
    await page.close();
  });

  it('a failed save is said in the chosen language, with what failed', async () => {
    const { page } = await open({ hash: 'settings', language: 'zh-CN' });
    await page.fill('#f-lowStockThreshold', '999');
    await page.click('button[type="submit"]');
    const status = page.locator('.form-status');
    await status.getByText('设置无法保存').waitFor();
    assert.match(await status.textContent(), /\/ro\/tidings-desk\.toml: read-only/);
    await page.close();
  });
});

describe('debug log', () => {
  it('shows every raw message with its kind, filters by ws:* pattern, pauses, clears, counts and lists malformed reasons', async () => {
    const { page } = await open({ hash: 'debug' });
    const shown = async () => Number((await page.textContent('.screen-head .count')).replace(/\D/g, ''));
    const all = await shown();
    assert.equal(all, await page.evaluate(() => window.__mock.snapshot.debug.length));
    for (const [kind, n] of [
      ['malformed', 3],
      ['legacy', 2],
      ['all', all],
    ]) {
      await page.selectOption('.screen-head select', kind);
      await page.waitForFunction(
        (want) => document.querySelector('.screen-head .count').textContent.replace(/\D/g, '') === String(want),
        n,
      );
      if (kind !== 'all') {
        const kinds = await page
          .locator('[data-testid="debug-row"]')
          .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
        assert.deepEqual(kinds, Array(n).fill(kind));
      }
    }
    assert.match(await page.textContent('.reasons'), /missing field `orderNumber`/);

    await page.fill('input.mono', 'ws:fin*');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="debug-row"]').length < 10);
    const channels = await page.locator('[data-testid="debug-row"] .cell.mono').first().textContent();
    assert.equal(channels, 'ws:finance');

    await page.fill('input.mono', 'ws:*');
    await page.click('button[aria-pressed]'); // pause
    await page.evaluate(() =>
      window.__mock.emit({
        debug: [
          { seq: 5_000_000, channel: 'ws:orders', receivedAt: Date.now(), outcome: 'legacy', raw: '{"type":"x"}' },
        ],
      }),
    );
    await page.waitForSelector('text=1 new while paused');
    assert.equal(await shown(), all);
    await page.click('button[aria-pressed]'); // resume
    await page.waitForFunction(
      (n) => document.querySelector('.screen-head .count').textContent.includes(String(n + 1)),
      all,
    );
    assert.equal(await page.locator('[data-testid="debug-row"]').first().getAttribute('data-kind'), 'legacy');

    await page.click('button:has-text("Clear")');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="debug-row"]').length === 0);
    await page.close();
  });
});

describe('live updates', () => {
  it('a batch from the Channel shows up in its feed', async () => {
    const { page } = await open({ hash: 'inventory' });
    const before = await rows(page, 'inventory').count();
    await page.evaluate(() => {
      const [it] = window.__mock.items([
        {
          type: 'inventory:change',
          action: 'outbound',
          productId: 'P-777',
          productName: '蓝牙耳机 Pro',
          oldQuantity: 30,
          newQuantity: 5,
          changeAmount: -25,
          timestamp: Date.now(),
        },
      ]);
      window.__mock.emit({ items: [it] });
    });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="row"]').length === n + 1, before);
    const first = rows(page, 'inventory').first();
    assert.match(await first.textContent(), /蓝牙耳机 Pro/);
    assert.equal(await first.locator('.grid-inv.low').count(), 1);
    await page.close();
  });

  it('status: live, reconnecting in N s counting down, offline with the reason, and the missed-events notice', async () => {
    const { page } = await open({});
    const status = page.locator('[data-testid="status"]');
    assert.equal(await status.getAttribute('data-state'), 'live');
    await page.evaluate(() =>
      window.__mock.emit({
        status: {
          kind: 'gateway',
          url: 'wss://erp.example.com/ws',
          connection: { state: 'reconnecting', attempt: 3, retry_at: Date.now() + 5000, reason: 'connection refused' },
          missedSince: null,
        },
      }),
    );
    await page.waitForSelector('[data-testid="status"][data-state="reconnecting"]');
    assert.match(await status.textContent(), /Reconnecting in [3-5] s.*attempt 3.*connection refused/);
    await page.waitForFunction(() =>
      /Reconnecting in [23] s/.test(document.querySelector('[data-testid="status"]').textContent),
    );

    await page.evaluate(() =>
      window.__mock.emit({
        status: {
          kind: 'gateway',
          url: 'wss://erp.example.com/ws',
          connection: { state: 'offline', reason: 'token expired' },
          missedSince: Date.UTC(2026, 0, 5, 1, 30),
        },
      }),
    );
    await page.waitForSelector('[data-testid="status"][data-state="offline"]');
    assert.match(await status.textContent(), /Offline.*token expired/);
    assert.match(await page.textContent('.banners'), /Events may have been missed since 01\/05\/2026, 09:30/);
    await page.close();
  });

  it('a focus request (a clicked notification) opens the feed and highlights the item', async () => {
    const { page } = await open({ hash: 'overview' });
    const target = await page.evaluate(() => window.__mock.snapshot.feeds.orders[0].id);
    await page.evaluate((itemId) => window.__mock.emit({ focus: { feed: 'orders', itemId } }), target);
    await page.waitForSelector('.app[data-screen="orders"]');
    await page.waitForSelector(`[data-testid="row"][data-item-id="${target}"].flash`);
    await page.close();
  });

  it('an in-app toast (no notification daemon) shows its item with Show, and stays until dismissed when critical', async () => {
    const { page } = await open({ hash: 'overview' });
    const target = await page.evaluate(() => window.__mock.snapshot.feeds.approvals[0].id);
    await page.evaluate(
      (itemId) =>
        window.__mock.emit({
          toasts: [{ title: '审批请求 SO-2026-000130', body: '陈静 申请大客户折扣 15%', urgency: 'critical', itemId }],
        }),
      target,
    );
    const toast = page.locator('.toast', { hasText: '审批请求 SO-2026-000130' });
    await toast.waitFor();
    await toast.locator('button.primary').click();
    await page.waitForSelector('.app[data-screen="approvals"]');
    await page.waitForSelector(`[data-testid="row"][data-item-id="${target}"].flash`);
    await toast.waitFor({ state: 'detached' });
    await page.close();
  });

  it('pausing notifications for an hour asks Rust and says until when', async () => {
    const { page } = await open({});
    await page.click('.topbar button:has-text("Pause notifications")');
    await page.waitForSelector('.topbar .tag-warning');
    assert.match(await page.textContent('.topbar .tag-warning'), /Notifications paused until \d{2}:\d{2}/);
    assert.deepEqual(await calls(page, 'pause_notifications'), [{ minutes: 60 }]);
    await page.close();
  });

  it('relative times tick without new events', async () => {
    const { page } = await open({ hash: 'inventory' });
    await page.evaluate(() => {
      const [it] = window.__mock.items([
        { type: 'broadcast', level: 'info', message: 'tick', timestamp: Date.now() - 7000 },
      ]);
      window.__mock.emit({ items: [it] });
    });
    await go(page, 'broadcast');
    const ago = page.locator('[data-testid="row"] .ago').first();
    const first = await ago.textContent();
    await page.waitForFunction((t) => document.querySelector('[data-testid="row"] .ago')?.textContent !== t, first);
    await page.close();
  });
});

describe('search', () => {
  it('finds a Chinese product name across feeds, exports the results, and shows one in its feed', async () => {
    const { page, problems } = await open({ language: 'zh-CN' });
    await go(page, 'search');
    await page.fill('[data-testid="search-text"]', '保温杯');
    const results = page.locator('[data-testid="search-result"]');
    await results.first().waitFor();
    const expected = await page.evaluate(
      () =>
        Object.values(window.__mock.snapshot.feeds)
          .flat()
          .filter((i) => JSON.stringify(i.event).includes('保温杯')).length,
    );
    assert.ok(expected >= 2, 'the fixtures hold the product in more than one event');
    assert.equal(await results.count(), expected);
    await page.screenshot({ path: join(ARTIFACTS, 'search-results.zh-CN.png') });
    const [query] = (await calls(page, 'search')).slice(-1);
    assert.equal(query.query.text, '保温杯');
    assert.deepEqual(query.query.feeds, []);
    await page.click('text=导出 CSV');
    await page.waitForSelector('text=已保存到 /home/user/Downloads/tidings-search-20261203-120000.csv');
    const id = await results.first().getAttribute('data-item-id');
    await results.first().locator('button').click();
    await page.waitForSelector('.app[data-screen="inventory"]');
    await page.waitForSelector(`[data-testid="row"][data-item-id="${id}"]`);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('sends the feed, date range and read state to Rust, dates as local days with the end day included', async () => {
    const { page } = await open({ language: 'en' });
    await go(page, 'search');
    await page.selectOption('.search-bar select >> nth=0', 'orders');
    await page.fill('.search-bar input[type="date"] >> nth=0', '2026-12-01');
    await page.fill('.search-bar input[type="date"] >> nth=1', '2026-12-02');
    await page.selectOption('.search-bar select >> nth=1', 'unread');
    await page.fill('[data-testid="search-text"]', 'SO-');
    await page.waitForFunction(() =>
      window.__mock.calls.some((c) => c.cmd === 'search' && c.args.query.text === 'SO-'),
    );
    const [{ query }] = (await calls(page, 'search')).filter((a) => a.query.text === 'SO-');
    assert.deepEqual(query.feeds, ['orders']);
    assert.equal(query.read, false);
    // Local days of the page's time zone, the end day included.
    const [from, until] = await page.evaluate(() => [
      new Date('2026-12-01T00:00:00').getTime(),
      new Date('2026-12-03T00:00:00').getTime(),
    ]);
    assert.equal(query.from, from);
    assert.equal(query.until, until);
    await page.close();
  });
});

describe('keyboard', () => {
  it('the sidebar is reachable by Tab, moves with arrows, opens with Enter, and focus is visible', async () => {
    const { page } = await open({ hash: 'overview' });
    await page.focus('[data-testid="nav-overview"]');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('data-testid'));
    assert.equal(focused, 'nav-orders');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.app[data-screen="orders"]');
    await page.keyboard.press('Alt+9');
    await page.waitForSelector('.app[data-screen="mine"]');
    await page.close();
  });
});

describe('hostile strings', () => {
  it('XSS payloads in every string field render as text: no dialog, no element, no navigation', async () => {
    const { page, problems } = await open({ fixture: 'xss' });
    const start = page.url();
    for (const screen of SCREENS) {
      await go(page, screen);
      if (screen === 'approvals') {
        for (const id of ['results', 'mine']) await tab(page, id);
      }
      const injected = await page.evaluate(
        () => document.querySelectorAll('[data-xss], img, iframe, svg, object, embed, a[href]').length,
      );
      assert.equal(injected, 0, `no injected element on ${screen}`);
    }
    await page.evaluate(() => {
      window.__mock.emit({
        toasts: [
          {
            title: '<img src=x onerror="window.__pwned=1" data-xss>',
            body: '<script data-xss>window.__pwned=1</script>',
            urgency: 'critical',
          },
        ],
      });
    });
    await page.waitForSelector('.toast');
    assert.ok((await page.textContent('.toast')).includes('<img src=x'));
    assert.ok(
      (await page.textContent('main')).includes('<script data-xss>') ||
        (await page.textContent('body')).includes('<script data-xss>'),
    );
    // The action button asks Rust; a javascript: actionUrl never runs here.
    await go(page, 'mine');
    const actions = page.locator('[data-testid="row"] button.primary');
    if ((await actions.count()) > 0) await actions.first().click();
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.evaluate(() => document.querySelectorAll('[data-xss], script:not([src])').length), 0);
    assert.equal(page.url().split('#')[0], start.split('#')[0]);
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('action links', () => {
  it('the action button names the host it opens, and a refused link says why', async () => {
    const { page, problems } = await open({ hash: 'mine' });
    const button = page.locator('[data-testid="row"] [data-testid="action-link"]').first();
    assert.match(await button.textContent(), /↗ erp\.example\.com/);
    await page.evaluate(() =>
      window.__mock.emit({
        items: [
          {
            id: 'mine#trick',
            seq: 9_000_000,
            feed: 'mine',
            channel: 'user:u-1001:notifications',
            receivedAt: Date.now(),
            read: false,
            extra: {},
            event: {
              type: 'notification',
              notificationType: 'warning',
              title: '账户安全提醒',
              message: '请重新登录',
              actionUrl: '//evil.example/login',
              actionLabel: '立即登录',
              timestamp: Date.now(),
            },
            link: { state: 'refused', reason: 'the link starts with // and would leave the ERP for another host' },
          },
        ],
      }),
    );
    const refused = page.locator('[data-testid="row"] [data-testid="link-refused"]');
    await refused.waitFor();
    assert.equal(await refused.count(), 1);
    assert.match(await refused.textContent(), /Link blocked|链接已拦截/);
    assert.match(await refused.getAttribute('title'), /starts with \/\//);
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('under load', () => {
  it('20k events/s for 5 s: no long task over 50 ms, heap bounded', async () => {
    const { page, problems } = await open({ hash: 'inventory' });
    const reniced = browser.prioritise();
    const cdp = await browser.context.newCDPSession(page);
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      return (await cdp.send('Runtime.getHeapUsage')).usedSize;
    };
    const heapBefore = await heap();
    // Start from a settled page: the first render's tasks are not the flood's.
    await page.evaluate(() => new Promise((resolve) => requestIdleCallback(resolve, { timeout: 2000 })));
    // A trace of the page's top-level tasks gives each one's CPU time beside
    // its wall time, to tell the page's own work from time the machine gave
    // to other processes.
    const trace = [];
    cdp.on('Tracing.dataCollected', (d) => trace.push(...d.value));
    const traced = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
    await cdp.send('Tracing.start', { categories: 'toplevel', transferMode: 'ReportEvents' });
    const loadBefore = loadavg()[0];
    const floodDone = page.evaluate(() => window.__mock.flood({ rate: 20_000, seconds: 5, batchMax: 500 }));
    // Halfway through, a user switches screens: the click must be answered.
    await page.waitForTimeout(2500);
    const clickAt = Date.now();
    await go(page, 'debug');
    const clickMs = Date.now() - clickAt;
    await page.waitForSelector('[data-testid="debug-row"]');
    const result = await floodDone;
    const loadAfter = loadavg()[0];
    await cdp.send('Tracing.end');
    await traced;
    const longTasks = await page.evaluate(
      ({ start, end }) => window.__mock.longTasks.filter((t) => t.start + t.duration >= start && t.start <= end),
      result,
    );
    const heapAfter = await heap();
    // Bounded, not just small: 40k more events leave the heap where it was.
    await page.evaluate(() => window.__mock.flood({ rate: 20_000, seconds: 2, batchMax: 500 }));
    const heapAgain = await heap();

    const threads = new Map(
      trace.filter((e) => e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]),
    );
    const tasks = trace.filter(
      (e) =>
        e.ph === 'X' &&
        e.name === 'ThreadControllerImpl::RunTask' &&
        threads.get(`${e.pid}:${e.tid}`) === 'CrRendererMain',
    );
    const slow = tasks
      .filter((e) => e.dur > 50_000)
      .map((e) => ({ wallMs: Math.round(e.dur / 1000), cpuMs: Math.round((e.tdur ?? e.dur) / 1000) }));
    const busyMachine = Math.max(loadBefore, loadAfter) / cpus().length > 1;
    const figures = {
      chromiumReniced: reniced,
      loadPerCore: +(Math.max(loadBefore, loadAfter) / cpus().length).toFixed(2),
      events: result.sent,
      batches: result.batches,
      seconds: +(result.ms / 1000).toFixed(2),
      fps: Math.round(result.frames / (result.ms / 1000)),
      longTasks: longTasks.length,
      longestTaskMs: Math.round(Math.max(0, ...longTasks.map((t) => t.duration))),
      longestTaskCpuMs: Math.round(Math.max(0, ...tasks.map((e) => (e.tdur ?? 0) / 1000))),
      tasksOver50msWall: slow,
      clickToScreenMs: clickMs,
      heapBeforeMB: +(heapBefore / 2 ** 20).toFixed(1),
      heapAfterMB: +(heapAfter / 2 ** 20).toFixed(1),
      heapAfter140kEventsMB: +(heapAgain / 2 ** 20).toFixed(1),
    };
    console.log(`flood figures: ${JSON.stringify(figures)}`);
    assert.equal(result.sent, 100_000);
    assert.ok(tasks.length > 100, 'the trace saw the page working');
    // The page's own work never holds the main thread for 50 ms.
    assert.deepEqual(
      slow.filter((t) => t.cpuMs > 50),
      [],
      'no task of the page takes over 50 ms of CPU while 20k events/s arrive',
    );
    // And as the user sees it (PerformanceObserver 'longtask', wall time):
    // none at all, unless the machine is oversubscribed, when a task that
    // used little CPU can still be stretched past 50 ms; the figures above
    // show each such task's CPU time.
    if (!busyMachine) assert.deepEqual(longTasks, [], 'no long task over 50 ms while 20k events/s arrive');
    else if (longTasks.length)
      console.log(
        `flood: machine load ${figures.loadPerCore}/core; ${longTasks.length} wall-clock long tasks, CPU time of each under 50 ms`,
      );
    // Feeds and the debug log are capped: after 100k events the heap is a few MB over the start.
    assert.ok(heapAfter - heapBefore < 30 * 2 ** 20, `heap grew by ${figures.heapAfterMB - figures.heapBeforeMB} MB`);
    assert.ok(
      heapAgain - heapAfter < 6 * 2 ** 20,
      `heap kept growing: ${figures.heapAfterMB} → ${figures.heapAfter140kEventsMB} MB`,
    );
    assert.ok(result.frames / (result.ms / 1000) > 20, `the page kept painting (${figures.fps} frames/s)`);
    assert.ok(clickMs < 1500, `a click during the flood is answered (${clickMs} ms)`);
    // The newest events are on screen.
    assert.match(await page.locator('[data-testid="debug-row"]').first().textContent(), /ws:/);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
