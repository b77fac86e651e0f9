/**
 * The uWebSockets.js adapter: the only file that imports uWS. It turns uWS's
 * callback API into plain request/reply objects, reads bodies with a size
 * bound, and follows uWS's rules: read the request before any await, watch
 * for aborts, and cork every write made after an await.
 */
import uWS from 'uWebSockets.js';

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  header(name: string): string;
  body: Buffer | null;
}

export interface Reply {
  status: number;
  body: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /**
   * A streamed answer (Server-Sent Events): the status and headers go out, then `stream` writes
   * to the sink until it ends it, or the client goes (`onClose`). `body` is ignored.
   */
  stream?: (sink: StreamSink) => void;
}

/** Where a streamed answer writes. Writes after the client went are dropped. */
export interface StreamSink {
  write(chunk: string): void;
  end(): void;
  /** called once when the client closes the connection or the stream ends */
  onClose(cb: () => void): void;
  readonly closed: boolean;
}

export type Handler = (req: Request) => Reply | Promise<Reply>;

export interface Route {
  method: 'get' | 'post' | 'put' | 'delete';
  pattern: string;
  /** a stable label for metrics (the pattern) */
  name?: string;
  /** what an API key needs to call it (api/auth.ts); `public`: no key. Every /api/v1 route says. */
  scope?: 'admin' | 'execute' | 'read' | 'public';
  /** an /api route that is public on purpose (the API's own description); any other needs a scope */
  openOnPurpose?: true;
  /** runs before the body is read: throws to refuse the request (a missing key, an overload) */
  guard?: (req: Request) => void;
  handler: Handler;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  readTimeoutMs: number;
  routes: Route[];
  /** answers for unknown paths and for errors the handler throws */
  notFound: (req: Request, allowed: string[]) => Reply;
  onError: (err: unknown) => Reply;
  /** called once per answered request */
  observe?: (route: string, method: string, status: number, seconds: number) => void;
}

export interface HttpServer {
  port: number;
  close(): void;
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  202: '202 Accepted',
  204: '204 No Content',
  302: '302 Found',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServer> {
  const app = uWS.App();
  const byPattern = new Map<string, string[]>();
  for (const r of o.routes) {
    byPattern.set(r.pattern, [...(byPattern.get(r.pattern) ?? []), r.method.toUpperCase()]);
    const paramNames = [...r.pattern.matchAll(/:([A-Za-z_]+)/g)].map((x) => x[1]);
    app[(r.method === 'delete' ? 'del' : r.method) as 'get'](r.pattern, (res, req) =>
      handle(res, req, r.name ?? r.pattern, paramNames, r.handler, o, r.method !== 'get' && r.method !== 'delete', undefined, r.guard),
    );
  }
  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const allowed = matchAllowed(byPattern, url);
    const method = req.getMethod().toUpperCase();
    handle(res, req, allowed.length ? 'method-not-allowed' : 'not-found', [], (rq) => o.notFound(rq, allowed), o, false, method);
  });
  // exclusive: a second process on the same port fails here instead of silently sharing it (SO_REUSEPORT)
  const EXCLUSIVE_PORT = 1; // LIBUS_LISTEN_EXCLUSIVE_PORT
  type ListenWithOptions = (host: string, port: number, options: number, cb: (s: uWS.us_listen_socket | false) => void) => void;
  const socket = await new Promise<uWS.us_listen_socket | false>((resolve) =>
    (app.listen as unknown as ListenWithOptions).call(app, o.host, o.port, EXCLUSIVE_PORT, resolve),
  );
  if (!socket) throw new Error(`cannot listen on ${o.host}:${o.port} (address in use?)`);
  return {
    port: uWS.us_socket_local_port(socket),
    close: () => uWS.us_listen_socket_close(socket),
  };
}

function handle(
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  route: string,
  paramNames: string[],
  handler: Handler,
  o: HttpServerOptions,
  readBody: boolean,
  methodOverride?: string,
  guard?: (req: Request) => void,
): void {
  const t0 = performance.now();
  const method = methodOverride ?? req.getMethod().toUpperCase();
  const headers = new Map<string, string>();
  req.forEach((k, v) => headers.set(k, v));
  const params: Record<string, string> = {};
  let badInput: string | null = null;
  paramNames.forEach((n, i) => {
    const raw = req.getParameter(i) ?? '';
    try {
      params[n] = decodeURIComponent(raw);
    } catch {
      params[n] = raw;
      badInput = `path parameter "${n}" is not valid percent-encoding`;
    }
  });
  const q = req.getQuery();
  const query = q ? new URLSearchParams(q) : NO_QUERY;
  const nul = (k: string, v: string) => {
    if (v.includes('\u0000') || k.includes('\u0000')) badInput = `"${k.replaceAll('\u0000', '')}" contains a NUL character`;
  };
  for (const n of paramNames) nul(n, params[n]);
  if (q) for (const [k, v] of query) nul(k, v);
  const rq: Request = {
    method,
    path: req.getUrl(),
    query,
    params,
    header: (n) => headers.get(n.toLowerCase()) ?? '',
    body: null,
  };
  const state = { aborted: false, done: false };
  const closers: (() => void)[] = [];
  const closed = () => {
    for (const cb of closers.splice(0)) cb();
  };
  res.onAborted(() => {
    state.aborted = true;
    closed();
  });

  const send = (reply: Reply) => {
    if (state.done) return;
    state.done = true;
    o.observe?.(route, method, reply.status, (performance.now() - t0) / 1000);
    if (state.aborted) return;
    res.cork(() => {
      res.writeStatus(STATUS_TEXT[reply.status] ?? String(reply.status));
      res.writeHeader('content-type', reply.contentType ?? 'application/json');
      if (reply.headers) for (const [k, v] of Object.entries(reply.headers)) res.writeHeader(k, v);
      if (!reply.stream) res.end(reply.body);
    });
    if (!reply.stream) return;
    let ended = false;
    const sink: StreamSink = {
      write: (chunk) => {
        if (!state.aborted && !ended) res.cork(() => void res.write(chunk));
      },
      end: () => {
        if (ended) return;
        ended = true;
        if (!state.aborted) res.cork(() => void res.end());
        closed();
      },
      onClose: (cb) => void closers.push(cb),
      get closed() {
        return state.aborted || ended;
      },
    };
    reply.stream(sink);
  };
  const run = () => {
    let out: Reply | Promise<Reply>;
    try {
      out = handler(rq);
    } catch (err) {
      return send(o.onError(err));
    }
    if (out instanceof Promise) out.then(send, (err) => send(o.onError(err)));
    else send(out);
  };

  if (badInput) return send(o.onError(Object.assign(new Error(badInput), { code: 'E_VALIDATION' })));
  if (guard) {
    try {
      guard(rq);
    } catch (err) {
      return send(o.onError(err)); // before the body is read: a refusal costs no upload
    }
  }
  if (!readBody) return run();
  const declared = Number(headers.get('content-length') ?? '0');
  if (declared > o.maxBodyBytes) {
    send(o.onError(tooLarge(o.maxBodyBytes)));
    return;
  }
  let chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | null = null;
  res.onData((ab, isLast) => {
    if (state.done) return;
    size += ab.byteLength;
    if (size > o.maxBodyBytes) {
      chunks = [];
      if (timer) clearTimeout(timer);
      send(o.onError(tooLarge(o.maxBodyBytes)));
      return;
    }
    // uWS reuses the ArrayBuffer after this callback: copy it
    chunks.push(Buffer.from(Buffer.from(ab)));
    if (!isLast) {
      timer ??= setTimeout(
        () =>
          send(
            o.onError(Object.assign(new Error(`the request body did not arrive within ${o.readTimeoutMs} ms`), { code: 'E_READ_TIMEOUT' })),
          ),
        o.readTimeoutMs,
      );
      return;
    }
    if (timer) clearTimeout(timer);
    rq.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    run();
  });
}

/** The query of a request without one (most): shared, never written to. */
const NO_QUERY = new URLSearchParams();

function tooLarge(max: number): Error {
  return Object.assign(new Error(`the request body exceeds the limit of ${max} bytes (api.max_body_bytes)`), { code: 'E_BODY_TOO_LARGE' });
}

function matchAllowed(byPattern: Map<string, string[]>, url: string): string[] {
  const parts = url.split('/');
  for (const [pattern, methods] of byPattern) {
    const pp = pattern.split('/');
    if (pp.length === parts.length && pp.every((p, i) => (p.startsWith(':') ? parts[i] !== '' : p === parts[i]))) return methods;
  }
  return [];
}
