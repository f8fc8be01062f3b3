// @tidings/client: the browser client of the Tidings gateway (docs/web.md).
export { TidingsClient } from './client.js';
export type { ClientOptions, Listener, ConnectionOptions, UpstreamStatus, TokenSource } from './client.js';
export { classify, toMessage, CHANNELS } from './events.js';
export type * from './events.js';
