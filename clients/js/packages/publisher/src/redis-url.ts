// Redis Sentinel and Redis Cluster URLs, read as the Rust side reads them
// (crates/tidings/src/redis_url.rs, docs/deploy.md "Redis Sentinel"):
//
//   redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]
//   rediss+sentinel://…   (TLS to the master)
//
// The hosts are sentinels (port 26379 when left out), `service` is the name
// in their `sentinel monitor` line, the credentials (percent-decoded) are the
// master's; the sentinels are asked without them. ioredis does the rest: it
// asks the sentinels for the master on every (re)connect and checks its role.
//
//   redis+cluster://[[user]:password@]host[:port][,host[:port]…][/]
//   rediss+cluster://…    (TLS to every node)
//
// The hosts are some of the cluster's nodes (port 6379 when left out), used
// to learn the slot map; the credentials are every node's. Redis Cluster has
// only database 0, so `/0` is the one database number accepted.

/** The default port of a sentinel. */
const SENTINEL_PORT = 26379;
const SENTINEL_SCHEME = /^(rediss?)\+sentinel:\/\//;
/** The default port of a cluster node. */
const CLUSTER_PORT = 6379;
const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//;

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

/**
 * What a cluster URL stands for: `new Cluster(nodes, { redisOptions })`
 * (ioredis applies `redisOptions` to every node connection).
 */
export interface ClusterOptions {
  /** The startup nodes, asked for the slot map. */
  nodes: { host: string; port: number }[];
  redisOptions: {
    username?: string;
    password?: string;
    /** `rediss+cluster://`: TLS to every node. */
    tls?: Record<string, never>;
  };
}

/** `url` with its credentials replaced by `***`, for messages. */
export function hideCredentials(url: string): string {
  if (!SENTINEL_SCHEME.test(url) && !CLUSTER_SCHEME.test(url)) return url.replace(/\/\/[^@/]*@/, '//***@');
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
  return parseScheme(url, SENTINEL_SCHEME, parse, 'redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]');
}

/**
 * The ioredis `Cluster` arguments of a `redis+cluster://` /
 * `rediss+cluster://` URL; `undefined` for any other URL. Throws when the
 * URL is malformed, saying what is wrong, with the password hidden.
 */
export function clusterOptions(url: string): ClusterOptions | undefined {
  return parseScheme(url, CLUSTER_SCHEME, parseCluster, 'redis+cluster://[[user]:password@]host[:port][,host[:port]…]');
}

/** What `parseRest` makes of `url` after `scheme`; errors say what was expected, password hidden. */
function parseScheme<T>(
  url: string,
  scheme: RegExp,
  parseRest: (rest: string, tls: boolean) => T,
  expected: string,
): T | undefined {
  const match = scheme.exec(url);
  if (!match) return undefined;
  try {
    return parseRest(url.slice(match[0].length), match[1] === 'rediss');
  } catch (error) {
    throw new Error(`Redis URL ${hideCredentials(url)} is not usable: ${(error as Error).message}. Expected ${expected}`);
  }
}

/** `[[user]:password@]host[:port][,host[:port]…][/[0]]`. */
function parseCluster(rest: string, tls: boolean): ClusterOptions {
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : undefined;
  rest = rest.slice(at + 1);
  const slash = rest.indexOf('/');
  const hosts = slash >= 0 ? rest.slice(0, slash) : rest;
  const db = slash >= 0 ? rest.slice(slash + 1) : '';
  if (db !== '' && !/^\d+$/.test(db)) throw new Error(`${JSON.stringify(db)} is not a database number (Redis Cluster has only database 0: leave it out)`);
  if (db !== '' && Number(db) !== 0) throw new Error(`Redis Cluster has only database 0, not ${db}: leave the /${db} out`);
  if (hosts.trim() === '') throw new Error('no cluster node host:port');
  const options: ClusterOptions = {
    nodes: hosts.split(',').map((host) => address(host.trim(), CLUSTER_PORT, 'cluster node')),
    redisOptions: credentials(auth),
  };
  if (tls) options.redisOptions.tls = {};
  return options;
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
    sentinels: rest.slice(0, slash).split(',').map((host) => address(host.trim(), SENTINEL_PORT, 'sentinel')),
    name,
    db: Number(db),
    ...credentials(auth),
  };
  if (tls) {
    options.tls = {};
    options.enableTLSForSentinelMode = true;
  }
  return options;
}

/** `[user]:password` or `password` (no colon), percent-decoded; empty parts left out. */
function credentials(auth: string | undefined): { username?: string; password?: string } {
  const out: { username?: string; password?: string } = {};
  if (auth === undefined) return out;
  const colon = auth.indexOf(':');
  const username = colon >= 0 ? auth.slice(0, colon) : '';
  const password = colon >= 0 ? auth.slice(colon + 1) : auth;
  if (username !== '') out.username = decode(username, 'the user name');
  if (password !== '') out.password = decode(password, 'the password');
  return out;
}

/** `host[:port]` or `[v6]:port`, `defaultPort` when absent; `what` names it in errors. */
function address(text: string, defaultPort: number, what: string): { host: string; port: number } {
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new Error(`${JSON.stringify(text)} has no closing ]`);
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new Error(`${JSON.stringify(text)} has ${JSON.stringify(after)} after the ]`);
    if (after !== '') port = after.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) [host, port] = [text.slice(0, colon), text.slice(colon + 1)];
  }
  if (host === '') throw new Error(`a ${what} address is empty (${JSON.stringify(text)}; two commas in a row?)`);
  if (port === undefined) return { host, port: defaultPort };
  const number = /^\d{1,5}$/.test(port) ? Number(port) : 0;
  if (number < 1 || number > 65_535) throw new Error(`${JSON.stringify(port)} is not a port (1 to 65535) in ${JSON.stringify(text)}`);
  return { host, port: number };
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error(`${what} is not valid percent-encoding`);
  }
}
