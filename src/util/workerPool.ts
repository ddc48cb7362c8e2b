/**
 * Worker threads that answer requests: each request goes to the next worker in turn with an id, and
 * its reply (carrying the same id) resolves it. Replies may come in any order; callers await them in
 * the order they need. A worker's error rejects every request still waiting.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export class RequestPool<Req extends object, Reply extends { id: number }> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 0;
  private nextId = 1;

  constructor(script: URL, threads: number, options?: WorkerOptions) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(script, options);
      w.on('message', (r: Reply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.resolve(r);
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
