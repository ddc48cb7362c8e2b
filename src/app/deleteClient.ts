/**
 * The client side of `sisa serve`: sends a deletion request to a running service and returns its
 * DeleteResult, or throws the service's error as the SisaError a local deletion would have thrown.
 * It loads only node:http, so `sisa delete --server` starts in the time Node itself takes.
 */
import http from 'node:http';
import type { DeleteResult } from './delete.js';
import type { DeleteRequest } from './serve.js';
import { errorMessage, SisaError, usageError, type ErrorCode } from '../util/errors.js';

const CODES: readonly ErrorCode[] = ['USAGE', 'INPUT', 'STATE', 'NOT_FOUND', 'BACKEND', 'TRAIN', 'INTERRUPTED'];

export async function deleteViaService(serverUrl: string, request: DeleteRequest): Promise<DeleteResult> {
  let url: URL;
  try {
    url = new URL('/delete', serverUrl);
  } catch {
    throw usageError(`--server must be the URL 'sisa serve' printed (http://127.0.0.1:PORT), got '${serverUrl}'`);
  }
  if (url.protocol !== 'http:') throw usageError(`--server must be an http:// URL (as 'sisa serve' prints it), got '${serverUrl}'`);
  const body = JSON.stringify(request);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) =>
      // Nothing was sent, or the service went away mid-request: in the second case a deletion may have
      // been committed, which the workspace's receipts (sisa status) say.
      reject(new SisaError('STATE', `cannot reach sisa serve at ${serverUrl} (${errorMessage(err)}); is it running? If the request was sent, 'sisa status' shows whether it was applied`)),
    );
    req.end(body);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SisaError('STATE', `${serverUrl} answered ${status} with a body that is not JSON; is it a sisa serve?`);
  }
  if (status === 200) return parsed as DeleteResult;
  const e = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
  const message = typeof e?.message === 'string' ? e.message : `${serverUrl} answered ${status}`;
  // A bug in the service is a bug here too (exit 70, as a local run), not a user-caused failure.
  if (e?.code === 'INTERNAL') throw new Error(`in sisa serve at ${serverUrl}: ${message}`);
  throw new SisaError(CODES.includes(e?.code as ErrorCode) ? (e!.code as ErrorCode) : 'STATE', message);
}
