/**
 * Worker threads that answer requests: each request goes to the next worker in turn (or to the one the
 * caller names) with an id, and its reply (carrying the same id) resolves it. Replies may come in any
 * order; callers await them in the order they need. A request that fails in the worker rejects with the
 * worker's error, rebuilt as the same SisaError (its code and message survive the thread boundary, so the
 * CLI still says it in one line); a worker that dies of an uncaught error, or exits, rejects the requests
 * sent to it, then and later, and the other workers go on.
 */
import { parentPort, Worker, type WorkerOptions } from 'node:worker_threads';
import { SisaError, type ErrorCode } from './errors.js';

/** What a worker sends back instead of a reply when a request fails. */
interface RequestFailure {
  id: number;
  failure: {
    message: string;
    /** A SisaError's code, rebuilt as one; else null. */
    code: ErrorCode | null;
    journalNote: string | undefined;
    /** An operating-system error's code (ENOSPC…), kept so that the CLI still names the cause. */
    systemCode: string | undefined;
    stack: string | undefined;
  };
}

/**
 * The worker's side: answers each request with `handle`'s reply (its buffers in `transfer` move rather than
 * copy), or with the failure that `handle` threw.
 */
export function answerRequests<Req extends { id: number }, Reply extends { id: number }>(handle: (request: Req) => { reply: Reply; transfer?: ArrayBuffer[] }): void {
  const port = parentPort!;
  port.on('message', (request: Req) => {
    let answer: { reply: Reply; transfer?: ArrayBuffer[] };
    try {
      answer = handle(request);
    } catch (err) {
      port.postMessage(failureOf(request.id, err));
      return;
    }
    port.postMessage(answer.reply, answer.transfer ?? []);
  });
}

function failureOf(id: number, err: unknown): RequestFailure {
  if (err instanceof Error) {
    const systemCode = (err as NodeJS.ErrnoException).code;
    return {
      id,
      failure: {
        message: err.message,
        code: err instanceof SisaError ? err.code : null,
        journalNote: err instanceof SisaError ? err.journalNote : undefined,
        systemCode: typeof systemCode === 'string' ? systemCode : undefined,
        stack: err.stack,
      },
    };
  }
  let message: string;
  try {
    message = String(err);
  } catch {
    message = 'a value that is not an Error was thrown';
  }
  return { id, failure: { message, code: null, journalNote: undefined, systemCode: undefined, stack: undefined } };
}

function rebuild(f: RequestFailure['failure']): Error {
  if (f.code) return new SisaError(f.code, f.message, { journalNote: f.journalNote });
  const err: NodeJS.ErrnoException = new Error(f.message);
  if (f.systemCode) err.code = f.systemCode;
  if (f.stack) err.stack = f.stack;
  return err;
}

export class RequestPool<Req extends object, Reply extends { id: number }> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; worker: number }>();
  /** Per worker: why it can take no more requests (it stopped), or null while it runs. */
  private readonly stopped: (Error | null)[] = [];
  private closing = false;
  private next = 0;
  private nextId = 1;

  constructor(script: URL, threads: number, options?: WorkerOptions) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(script, options);
      w.on('message', (r: Reply | RequestFailure) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        if ('failure' in r) p?.reject(rebuild(r.failure));
        else p?.resolve(r);
      });
      // A worker that dies of an uncaught error: its requests, and any sent to it later, get that error; the
      // other workers go on answering theirs (the pool is shared by calls that use other workers too).
      w.on('error', (err) => this.stop(i, err));
      // A worker can also end without an error event (code that calls process.exit): its requests, and any
      // sent to it later, would otherwise wait for good. Not while closing: close() has rejected them.
      w.on('exit', (code) => {
        if (!this.closing) this.stop(i, new Error(`a worker thread stopped (exit code ${code}) before answering`));
      });
      this.workers.push(w);
      this.stopped.push(null);
    }
  }

  /**
   * Marks worker i stopped (requests sent to it later get the first cause, not just an exit code) and
   * rejects the requests it had.
   */
  private stop(i: number, err: Error): void {
    this.stopped[i] ??= err;
    this.rejectPending(err, i);
  }

  /** Rejects the requests still waiting on worker `only`, or on any worker. */
  private rejectPending(err: Error, only?: number): void {
    for (const [id, p] of this.pending) {
      if (only !== undefined && p.worker !== only) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }

  /** Sends the request to the next worker in turn. */
  request(message: Req): Promise<Reply> {
    return this.requestOn(this.next++ % this.workers.length, message);
  }

  /** The number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Sends the request to worker `index` (0 ≤ index < size), for callers that balance the load themselves. */
  requestOn(index: number, message: Req): Promise<Reply> {
    const worker = this.workers[index];
    if (!worker) throw new RangeError(`no worker ${index} in a pool of ${this.workers.length}`);
    const stopped = this.closing ? new Error('the worker pool is closed') : this.stopped[index];
    if (stopped) return Promise.reject(stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: index });
      try {
        worker.postMessage({ ...message, id });
      } catch (err) {
        // A message that cannot be cloned: nothing was sent, so nothing will answer it.
        this.pending.delete(id);
        reject(err as Error);
      }
    });
  }

  /** The workers' thread ids (as node:worker_threads' threadId inside each). */
  threadIds(): number[] {
    return this.workers.map((w) => w.threadId);
  }

  /**
   * Whether the workers keep the process alive (they do from the start). A pool kept between calls lets go
   * of them while idle, so that a process that never closes it still exits when its work is done.
   */
  keepAlive(on: boolean): void {
    for (const w of this.workers) {
      if (on) w.ref();
      else w.unref();
    }
  }

  /** False once a worker has stopped (its later requests are refused) or the pool is closed. */
  healthy(): boolean {
    return !this.closing && this.stopped.every((s) => s === null);
  }

  /**
   * Stops the workers. Requests still waiting are rejected ('the worker pool is closed'): a pool shared by
   * several callers (a resident Predictor's) may be closed under a request another one is waiting on.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.rejectPending(new Error('the worker pool is closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * A pool of workers that answer one kind of request (FeaturePool, ScorePool), as its users see it: the
 * lifecycle calls, passed on to its RequestPool. Subclasses add the requests themselves.
 */
export abstract class PooledWorkers<Req extends object, Reply extends { id: number }> {
  protected constructor(protected readonly pool: RequestPool<Req, Reply>) {}

  /** Whether the workers keep the process alive (see RequestPool.keepAlive). */
  keepAlive(on: boolean): void {
    this.pool.keepAlive(on);
  }

  /** False once a worker has stopped or the pool is closed (see RequestPool.healthy). */
  healthy(): boolean {
    return this.pool.healthy();
  }

  /** The workers' thread ids (diagnostics). */
  threadIds(): number[] {
    return this.pool.threadIds();
  }

  /** Stops the workers; requests still waiting are rejected. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
