/** Store URLs (`s3://bucket/prefix`) and the configured endpoint, without loading the AWS SDK. */
import { usageError } from '../util/errors.js';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash; '' for the bucket root. */
  prefix: string;
}

/** Parses `s3://bucket/prefix`; the URL is what manifests record, so it may hold no credentials. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/@?#]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw usageError(`--store must look like s3://bucket/prefix, got '${url.replace(/\/\/[^/]*@/, '//…@')}'`);
  const bucket = m[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw usageError(`--store: '${bucket}' is not a valid S3 bucket name`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (/[?#]/.test(prefix) || prefix.split('/').some((p) => p === '.' || p === '..')) throw usageError(`--store: invalid prefix '${prefix}'`);
  return { bucket, prefix };
}

export function formatS3Url(loc: S3Location): string {
  return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}

/** The endpoint a user configured, if any, without user info (it is printed in errors and status). */
export function configuredEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (!raw) return undefined;
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    throw usageError(`AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL is not a URL`);
  }
}

