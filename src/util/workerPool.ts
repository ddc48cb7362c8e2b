/**
 * Worker threads that answer requests: each request goes to the next worker in turn with an id, and
 * its reply (carrying the same id) resolves it. Replies may come in any order; callers await them in
 * the order they need. A request that fails in the worker rejects with the worker's error, rebuilt as the
 * same SisaError (its code and message survive the thread boundary, so the CLI still says it in one line);
 * a worker that dies rejects every request still waiting.
 */
import { parentPort, Worker, type WorkerOptions } from 'node:worker_threads';
import { SisaError, type ErrorCode } from './errors.js';

/** What a worker sends back instead of a reply when a request fails. */
interface RequestFailure {
  id: number;
  failure: { message: string; code: ErrorCode | null; stack: string | undefined };
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
      const e = err instanceof Error ? err : new Error(String(err));
      const failure: RequestFailure = { id: request.id, failure: { message: e.message, code: err instanceof SisaError ? err.code : null, stack: e.stack } };
      port.postMessage(failure);
      return;
    }
    port.postMessage(answer.reply, answer.transfer ?? []);
  });
}

function rebuild(f: RequestFailure['failure']): Error {
  if (f.code) return new SisaError(f.code, f.message);
  const err = new Error(f.message);
  if (f.stack) err.stack = f.stack;
  return err;
}

export class RequestPool<Req extends object, Reply extends { id: number }> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
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
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  request(message: Req): Promise<Reply> {
    const id = this.nextId++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
