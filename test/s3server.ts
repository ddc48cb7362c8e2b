/**
 * A real S3 API server (s3rver) on loopback for the tests: random port, its own data folder, stopped
 * after. Tests talk to it through the real AWS SDK client and the real CLI; nothing is mocked.
 */
import type { AddressInfo } from 'node:net';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { Server } from 'node:http';
// s3rver ships no types.
// @ts-expect-error untyped CommonJS module
import S3rver from 's3rver';

export interface S3TestServer {
  endpoint: string;
  port: number;
  directory: string;
  /** Environment for the SDK (and for CLI children): endpoint, region, s3rver's fixed test credentials. */
  env: Record<string, string>;
  stop(): Promise<void>;
  /** Starts again on the same port with the same data (after stop). */
  restart(): Promise<void>;
  /** Stops the server and deletes its data folder. */
  dispose(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<S3TestServer> {
  const directory = await fsp.mkdtemp(path.join(os.tmpdir(), 'sisa-s3rver-'));
  let server: { run(): Promise<AddressInfo>; close(): Promise<void>; httpServer?: Server } | null = null;
  const make = (port: number) =>
    new S3rver({ address: '127.0.0.1', port, silent: !process.env.S3RVER_LOG, directory, configureBuckets: buckets.map((name) => ({ name })), vhostBuckets: false });
  server = make(0);
  const addr = await server!.run();
  const port = addr.port;
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { AWS_ENDPOINT_URL_S3: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_MAX_ATTEMPTS: '3' };
  const stop = async () => {
    if (!server) return;
    const s = server;
    server = null;
    // Drop kept-alive client connections, or close() waits for them.
    s.httpServer?.closeAllConnections();
    await s.close();
  };
  return {
    endpoint,
    port,
    directory,
    env,
    stop,
    async restart() {
      server = make(port);
      await server!.run();
    },
    async dispose() {
      await stop();
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}

/** Sets the server's SDK environment in this process (for library-level tests) and returns an undo. */
export function useS3Env(s: S3TestServer): () => void {
  const saved = Object.fromEntries(Object.keys(s.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, s.env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
