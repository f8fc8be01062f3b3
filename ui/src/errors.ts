//! Uncaught page errors go to the Rust side's log.
//!
//! A render that throws can leave Preact unable to render again: the window
//! then looks frozen while events keep arriving. Without this, nothing
//! anywhere would say why. Each uncaught error or unhandled rejection is
//! sent once as text (message and stack); after `MAX_REPORTS` the rest are
//! dropped, so a page throwing in a loop cannot flood the log or the IPC.

export const MAX_REPORTS = 10;

/** The text of an uncaught error event or rejection reason. */
export function describeError(error: unknown, where?: string): string {
  let text: string;
  if (error instanceof Error) {
    // V8's stack starts with "Name: message"; WebKit's is only the frames.
    const head = `${error.name}: ${error.message}`;
    const stack = error.stack ?? '';
    text = stack.startsWith(head) ? stack : stack ? `${head}\n${stack}` : head;
  } else if (typeof error === 'string') {
    text = error;
  } else {
    try {
      text = JSON.stringify(error) ?? String(error);
    } catch {
      text = String(error);
    }
  }
  return where ? `${text} (at ${where})` : text;
}

/**
 * Listens on `target` for uncaught errors and unhandled rejections and
 * passes each, as text, to `report` (at most `MAX_REPORTS`). Returns a
 * function that stops listening.
 */
export function reportUncaughtErrors(target: Window, report: (message: string) => Promise<void>): () => void {
  let sent = 0;
  const send = (message: string): void => {
    if (sent >= MAX_REPORTS) return;
    sent += 1;
    // Reporting must never throw in turn (no IPC, Rust gone while quitting).
    report(message).catch(() => undefined);
  };
  const onError = (ev: ErrorEvent): void => {
    const where = ev.filename ? `${ev.filename}:${ev.lineno}:${ev.colno}` : undefined;
    send(describeError(ev.error ?? ev.message, where));
  };
  const onRejection = (ev: PromiseRejectionEvent): void => send(`unhandled rejection: ${describeError(ev.reason)}`);
  target.addEventListener('error', onError);
  target.addEventListener('unhandledrejection', onRejection);
  return () => {
    target.removeEventListener('error', onError);
    target.removeEventListener('unhandledrejection', onRejection);
  };
}
