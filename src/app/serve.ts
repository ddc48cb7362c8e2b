/**
 * `sisa serve`: a resident deletion and prediction service for one workspace, over HTTP.
 *
 * A one-shot `sisa delete` pays Node's start, its module loading and cold code on every request: about
 * 0.3 s of a 0.6 s Davidson deletion. A service that honours deletion requests all day pays them once.
 * Each request runs the library's deleteRecords, exactly as the CLI does (the same lock, journal,
 * receipt and retrain), one request at a time; other sisa processes on the workspace take turns with it
 * through the workspace lock.
 *
 *   POST /delete   {"ids": ["1234", …], "strict"?: bool, "hashIds"?: bool, "fullRetrain"?: bool, "workdir"?: path}
 *                  → 200 and the DeleteResult as JSON, or an error status and {"error": {"code", "message"}}
 *   POST /predict  {"texts": ["…", …], "aggregate"?: "vote" | "mean"}
 *                  → 200 {"aggregate", "scores", "labels", "models": [{"shard", "version", "modelHash"}]}:
 *                  sisa predict's scores and labels for the texts, and the models that gave them
 *   GET  /health   → 200 {"workdir", "pid", "version"}
 *
 * Predictions keep their worker threads and the models' weights from one request to the next (the
 * library's Predictor): a one-shot `sisa predict` starts Node, loads the models and starts a worker for
 * every file. Before scoring, a request checks the committed models (the manifest) and loads them again
 * when they changed: a deletion through this service, or any other sisa process's commit. That check takes
 * its turn with the deletions: a prediction that arrives while a deletion is under way (or queued) waits
 * for its commit and is scored by the models it committed, never by the ones it replaced.
 *
 * `workdir`, when sent, must be the served workspace (a client that meant another one is refused, not
 * served the wrong one). The server never logs ids: they are the personal data being forgotten.
 *
 * Deletions cannot be undone, so requests a web page could make are refused: POST /delete needs
 * `content-type: application/json` (which a browser does not send cross-site without a preflight, which
 * this service never answers), a request with an `Origin` header is refused, and on a loopback address the
 * `Host` header must name loopback (a DNS-rebound name does not). The same holds for POST /predict. Neither
 * ids nor texts are ever logged.
 */
import http from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { deleteRecords, type DeleteResult } from './delete.js';
import { loadEnsemble, Predictor, type Aggregate } from '../models/ensemble.js';
import { loadState, requireTrained, type State } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { errorMessage, SisaError, systemErrorMessage, usageError, type ErrorCode } from '../util/errors.js';
import { checkOptions, rule, type OptionSpec } from './options.js';

export interface ServeOptions {
  /** The workspace to serve (trained). */
  workdir: string;
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  host?: string;
  /** TCP port (default 0: any free port; the returned url names it). */
  port?: number;
  /** Called with one line per request (method, path, status, counts, seconds; never an id). */
  onRequest?: (line: string) => void;
}

const SERVE_OPTIONS: OptionSpec<ServeOptions> = {
  workdir: rule.req('string'),
  host: rule.opt('string'),
  port: rule.opt('number'),
  onRequest: rule.opt('function'),
};

export interface DeletionService {
  /** Where it listens, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The served workspace (absolute, symbolic links resolved). */
  workdir: string;
  /** Stops accepting requests, lets the one in progress finish, and resolves when the server is closed. */
  close(): Promise<void>;
}

/** What a client sends to POST /delete. */
export interface DeleteRequest {
  ids: string[];
  strict?: boolean;
  hashIds?: boolean;
  fullRetrain?: boolean;
  /** The workspace the client means; refused if it is not the served one. */
  workdir?: string;
}

/** What a client sends to POST /predict. */
export interface PredictRequest {
  texts: string[];
  /** 'vote' (majority of the shard models, ties toxic; default) or 'mean' probability, as sisa predict. */
  aggregate?: Aggregate;
}

/** What POST /predict answers: row i's score and label, and the models that scored them. */
export interface PredictResponse {
  aggregate: Aggregate;
  scores: number[];
  labels: number[];
  models: { shard: number; version: number; modelHash: string }[];
}

/** The models a service predicts with, its worker threads, and the calls running on them. */
interface Scoring {
  /** The committed models it was loaded from (see modelsKey). */
  key: string;
  predictor: Predictor;
  models: PredictResponse['models'];
  calls: number;
  /** Replaced by newer models: closed when its last call ends. */
  retired: boolean;
}

/** What identifies the models a workspace predicts with: each shard's model hash and the features. */
function modelsKey(state: State): string {
  return JSON.stringify([state.config.features, state.models.map((m) => [m.shard, m.version, m.modelHash])]);
}

/** The most bytes a request body may have (a few hundred thousand ids, or tens of thousands of texts). */
const MAX_BODY = 16 * 2 ** 20;

/** HTTP status for each error code: the client's fault (400), the workspace's state (409), the server's (500). */
const STATUS: Record<ErrorCode, number> = { USAGE: 400, INPUT: 400, NOT_FOUND: 400, STATE: 409, INTERRUPTED: 503, BACKEND: 500, TRAIN: 500 };

/** The error codes of a response body: sisa's own, and INTERNAL for a failure that is a bug (a local run exits 70). */
export type ServiceErrorCode = ErrorCode | 'INTERNAL';

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ServiceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export async function serve(o: ServeOptions): Promise<DeletionService> {
  checkOptions('serve', o, SERVE_OPTIONS);
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be a whole number in 0..65535, got ${o.port}`);
  const ws = workspace(o.workdir);
  // Refused at start, not at the first request: a service for a workspace that cannot delete.
  requireTrained(await loadState(ws));
  const served = await realpath(ws.root);
  const version = await packageVersion();
  // One request at a time: each runs to its end (commit or clean failure) before the next starts.
  let chain: Promise<unknown> = Promise.resolve();
  // Set by close(): requests not started yet are refused, and every response closes its connection.
  let closing = false;
  const stopping = () => new HttpError(503, 'STATE', 'the service is stopping; this request was not carried out (nothing was deleted for it); send it to a running service');
  const inOrder = <T>(work: () => Promise<T>): Promise<T> => {
    const guarded = () => {
      if (closing) throw stopping();
      return work();
    };
    const run = chain.then(guarded, guarded);
    chain = run.catch(() => undefined);
    return run;
  };
  // The models predictions use; checked against the manifest in turn with the deletions (see the top).
  let scoring: Scoring | null = null;
  // A retired scoring's workers stop when its last call ends (or at once, with none running).
  const closeIfDone = (s: Scoring) => {
    if (s.retired && s.calls === 0) void s.predictor.close();
  };
  const retire = (s: Scoring) => {
    s.retired = true;
    closeIfDone(s);
  };
  const currentScoring = () =>
    inOrder(async () => {
      for (let attempt = 1; ; attempt++) {
        const state = await loadState(ws);
        requireTrained(state);
        const key = modelsKey(state);
        if (scoring?.key === key) return scoring;
        try {
          const ens = await loadEnsemble(ws, state);
          const next: Scoring = { key, predictor: new Predictor(ens), models: state.models.map((m) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash })), calls: 0, retired: false };
          if (scoring) retire(scoring);
          scoring = next;
          return next;
        } catch (err) {
          // Another process may have committed new models (and collected the old ones' checkpoints) between
          // the manifest read and the models' load: read it again.
          const now = await loadState(ws).catch(() => null);
          if (attempt < 3 && now && modelsKey(now) !== key) continue;
          throw err;
        }
      }
    });
  const predict = async (request: PredictRequest): Promise<PredictResponse> => {
    const s = await currentScoring();
    s.calls++;
    try {
      const how = request.aggregate ?? 'vote';
      const r = await s.predictor.predict(request.texts, how);
      return { aggregate: how, scores: Array.from(r.score), labels: Array.from(r.label), models: s.models };
    } finally {
      s.calls--;
      closeIfDone(s);
    }
  };

  const host = o.host ?? '127.0.0.1';
  const listenHost = host.replace(/^\[(.*)\]$/, '$1'); // [::1] as in a URL is ::1 to listen on
  const loopbackOnly = LOOPBACK_HOSTS.has(host);

  // Responses not yet sent: close() waits for them before it closes the connections.
  const unanswered = new Set<Promise<void>>();
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    // Settled when the response is sent, or when its connection is gone (a response queued behind
    // another on a pipelined connection that closed never emits its own 'close').
    const answered = new Promise<void>((resolve) => {
      res.once('close', () => resolve());
      req.socket.once('close', () => resolve());
    });
    unanswered.add(answered);
    void answered.then(() => unanswered.delete(answered));
    // A known route, never the path as sent: a client may put an id in the path or the query string.
    const route = routeOf(req);
    const where = KNOWN_ROUTES.includes(route) ? route : `${req.method} (unknown path)`;
    const respond = (status: number, body: unknown, summary: string) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...(closing ? { connection: 'close' } : {}) });
      res.end(text);
      o.onRequest?.(`${where} ${status} ${summary} ${((performance.now() - t0) / 1000).toFixed(3)} s`);
    };
    const fail = (err: unknown) => {
      if (err instanceof HttpError) return respond(err.status, { error: { code: err.code, message: err.message } }, err.code);
      if (err instanceof SisaError) return respond(STATUS[err.code], { error: { code: err.code, message: err.message } }, err.code);
      // The system's failure (a full disk) is the environment's, as in a local run; anything else is a bug.
      const system = systemErrorMessage(err);
      if (system) return respond(500, { error: { code: 'STATE', message: system } }, 'STATE');
      return respond(500, { error: { code: 'INTERNAL', message: errorMessage(err) } }, 'INTERNAL');
    };
    handle(req, route)
      .then((r) => respond(200, r.body, r.summary))
      .catch(fail);
  });

  const handle = async (req: http.IncomingMessage, route: string): Promise<{ body: unknown; summary: string }> => {
    if (closing) throw stopping();
    if (req.headers.origin !== undefined) throw new HttpError(403, 'USAGE', 'requests from web pages (with an Origin header) are refused: this service deletes records, which cannot be undone');
    if (loopbackOnly && !LOOPBACK_HOSTS.has(hostName(req.headers.host))) throw new HttpError(403, 'USAGE', `Host '${req.headers.host ?? ''}' is not this machine's loopback address`);
    if (route === 'GET /health') return { body: { workdir: served, pid: process.pid, version }, summary: 'ok' };
    if (route !== 'POST /delete' && route !== 'POST /predict') throw new HttpError(404, 'USAGE', `no such endpoint: ${route} (this service answers ${KNOWN_ROUTES.join(', ')})`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'USAGE', `${route} needs content-type: application/json, got '${type || 'none'}'`);
    if (route === 'POST /predict') {
      const r = await predict(parsePredictRequest(await readBody(req)));
      return { body: r, summary: `${r.scores.length} text(s) scored` };
    }
    const request = parseDeleteRequest(await readBody(req));
    if (request.workdir !== undefined) {
      const asked = await realpath(request.workdir).catch(() => request.workdir!);
      if (asked !== served) throw new HttpError(400, 'USAGE', `this service deletes from ${served}, not ${request.workdir}; send the request to the service of that workspace (or run sisa delete without --server)`);
    }
    const r: DeleteResult = await inOrder(() =>
      deleteRecords({ workdir: served, ids: request.ids, strict: request.strict, hashIds: request.hashIds, fullRetrain: request.fullRetrain }),
    );
    return { body: r, summary: `${r.requested} requested, ${r.deleted.length} deleted, ${r.retrained.length} shard(s) retrained` };
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? usageError(`--port ${port}: the port is in use on ${host}; pick another (or 0 for any free port)`)
          : usageError(`--host ${host}: cannot listen there (${errorMessage(err)}); name an address of this machine, e.g. 127.0.0.1`),
      ),
    );
    server.listen(port, listenHost, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${urlHost}:${address.port}`,
    workdir: served,
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // The request in progress finishes and is answered (with connection: close); queued ones are refused.
      await chain;
      if (scoring) retire(scoring); // its workers stop once the predictions in progress are answered
      // Answers go out at once; a client that stalls (stops reading, or never sends its body) is not waited
      // for more than a few seconds: its connection is closed with the rest.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([...unanswered]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    },
  };
}

const KNOWN_ROUTES = ['GET /health', 'POST /delete', 'POST /predict'];

/** How long close() waits for answers still being sent before it closes their connections. */
const CLOSE_GRACE_MS = 5000;

/** Method and path of a request (no query string); a request line that is no URL at all is '(bad path)'. */
function routeOf(req: http.IncomingMessage): string {
  try {
    return `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
  } catch {
    return `${req.method} (bad path)`;
  }
}

/** The host name of a Host header, without its port. */
function hostName(header: string | undefined): string {
  if (!header) return '';
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1);
  return header.replace(/:\d+$/, '');
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'USAGE', `request body over ${MAX_BODY / 2 ** 20} MiB; split it into several requests`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A request body as a JSON object with only the `allowed` fields, or a one-line 400 naming what is wrong;
 * `example` is the smallest body that would do, for the message.
 */
function jsonObjectBody(text: string, allowed: readonly string[], example: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'USAGE', `request body is not JSON (${errorMessage(err)}); send ${example}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'USAGE', `request body must be a JSON object: ${example}`);
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new HttpError(400, 'USAGE', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (allowed: ${allowed.join(', ')})`);
  return b;
}

/** Checks a POST /delete body: one-line errors naming the field. */
export function parseDeleteRequest(text: string): DeleteRequest {
  const b = jsonObjectBody(text, ['ids', 'strict', 'hashIds', 'fullRetrain', 'workdir'], '{"ids": ["…"]}');
  if (!Array.isArray(b.ids) || b.ids.length === 0 || !b.ids.every((x) => typeof x === 'string'))
    throw new HttpError(400, 'USAGE', "field 'ids' must be a non-empty array of strings");
  for (const k of ['strict', 'hashIds', 'fullRetrain'] as const)
    if (b[k] !== undefined && typeof b[k] !== 'boolean') throw new HttpError(400, 'USAGE', `field '${k}' must be true or false`);
  if (b.workdir !== undefined && typeof b.workdir !== 'string') throw new HttpError(400, 'USAGE', "field 'workdir' must be a string");
  return b as unknown as DeleteRequest;
}

/** Checks a POST /predict body: one-line errors naming the field. */
export function parsePredictRequest(text: string): PredictRequest {
  const b = jsonObjectBody(text, ['texts', 'aggregate'], '{"texts": ["…"]}');
  if (!Array.isArray(b.texts) || b.texts.length === 0) throw new HttpError(400, 'USAGE', "field 'texts' must be a non-empty array of strings");
  const bad = b.texts.findIndex((x) => typeof x !== 'string');
  if (bad >= 0) throw new HttpError(400, 'USAGE', `field 'texts': item ${bad} is not a string`);
  if (b.aggregate !== undefined && b.aggregate !== 'vote' && b.aggregate !== 'mean') throw new HttpError(400, 'USAGE', "field 'aggregate' must be 'vote' or 'mean'");
  return b as unknown as PredictRequest;
}

/** sisa's version, for /health. */
async function packageVersion(): Promise<string> {
  try {
    return (JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
