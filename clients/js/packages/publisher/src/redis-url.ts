// Redis Sentinel URLs, read as the Rust side reads them
// (crates/tidings/src/redis_url.rs, docs/deploy.md "Redis Sentinel"):
//
//   redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]
//   rediss+sentinel://…   (TLS to the master)
//
// The hosts are sentinels (port 26379 when left out), `service` is the name
// in their `sentinel monitor` line, the credentials (percent-decoded) are the
// master's; the sentinels are asked without them. ioredis does the rest: it
// asks the sentinels for the master on every (re)connect and checks its role.

/** The default port of a sentinel. */
const SENTINEL_PORT = 26379;
const SENTINEL_SCHEME = /^(rediss?)\+sentinel:\/\//;

/** The ioredis options a sentinel URL stands for (pass them to `new Redis({...})`). */
export interface SentinelOptions {
  sentinels: { host: string; port: number }[];
  /** The master's name in `sentinel monitor`. */
  name: string;
  db: number;
  username?: string;
  password?: string;
  /** `rediss+sentinel://`: TLS to the master (ioredis applies `tls` to it only with `enableTLSForSentinelMode`). */
  tls?: Record<string, never>;
  enableTLSForSentinelMode?: true;
}

/** `url` with its credentials replaced by `***`, for messages. */
export function hideCredentials(url: string): string {
  if (!SENTINEL_SCHEME.test(url)) return url.replace(/\/\/[^@/]*@/, '//***@');
  // As the parser does: the credentials run up to the last `@`.
  const start = url.indexOf('://') + 3;
  const at = url.lastIndexOf('@');
  return at > start ? `${url.slice(0, start)}***${url.slice(at)}` : url;
}

/**
 * The ioredis options of a `redis+sentinel://` / `rediss+sentinel://` URL;
 * `undefined` for any other URL (ioredis reads those itself). Throws when
 * the URL is malformed, saying what is wrong, with the password hidden.
 */
export function sentinelOptions(url: string): SentinelOptions | undefined {
  const scheme = SENTINEL_SCHEME.exec(url);
  if (!scheme) return undefined;
  try {
    return parse(url.slice(scheme[0].length), scheme[1] === 'rediss');
  } catch (error) {
    throw new Error(
      `Redis URL ${hideCredentials(url)} is not usable: ${(error as Error).message}. Expected redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]`,
    );
  }
}

/** `[[user]:password@]host[:port][,host[:port]…]/service[/db]`. */
function parse(rest: string, tls: boolean): SentinelOptions {
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : undefined;
  rest = rest.slice(at + 1);
  const slash = rest.indexOf('/');
  if (slash < 0) throw new Error('a sentinel URL names its service after the hosts (…/mymaster)');
  const [name = '', db = ''] = rest.slice(slash + 1).split('/');
  if (name === '') throw new Error('the service name (…/mymaster) is missing');
  if (db !== '' && !/^\d+$/.test(db)) throw new Error(`${JSON.stringify(db)} is not a database number`);
  if (rest.slice(0, slash).trim() === '') throw new Error('no sentinel host:port before the /service');
  const options: SentinelOptions = {
    sentinels: rest.slice(0, slash).split(',').map((host) => sentinelAddress(host.trim())),
    name,
    db: Number(db),
  };
  if (auth !== undefined) {
    const colon = auth.indexOf(':');
    const username = colon >= 0 ? auth.slice(0, colon) : '';
    const password = colon >= 0 ? auth.slice(colon + 1) : auth;
    if (username !== '') options.username = decode(username, 'the user name');
    if (password !== '') options.password = decode(password, 'the password');
  }
  if (tls) {
    options.tls = {};
    options.enableTLSForSentinelMode = true;
  }
  return options;
}

/** `host[:port]` or `[v6]:port`, port 26379 when absent. */
function sentinelAddress(address: string): { host: string; port: number } {
  let host = address;
  let port: string | undefined;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0) throw new Error(`${JSON.stringify(address)} has no closing ]`);
    host = address.slice(1, close);
    const after = address.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new Error(`${JSON.stringify(address)} has ${JSON.stringify(after)} after the ]`);
    if (after !== '') port = after.slice(1);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon >= 0) [host, port] = [address.slice(0, colon), address.slice(colon + 1)];
  }
  if (host === '') throw new Error(`a sentinel address is empty (${JSON.stringify(address)}; two commas in a row?)`);
  if (port === undefined) return { host, port: SENTINEL_PORT };
  const number = /^\d{1,5}$/.test(port) ? Number(port) : 0;
  if (number < 1 || number > 65_535) throw new Error(`${JSON.stringify(port)} is not a port (1 to 65535) in ${JSON.stringify(address)}`);
  return { host, port: number };
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error(`${what} is not valid percent-encoding`);
  }
}
