/**
 * Blobs in S3-compatible object storage, for workers on machines that share no filesystem.
 *
 * Layout: `s3://bucket/prefix/<kind>/<sha256>`. Objects are immutable and named by their content, so a
 * put of an existing blob is skipped and two writers of the same blob cannot disagree. Credentials come
 * only from the SDK's default provider chain (environment, shared config/credentials files, instance
 * roles); the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. Nothing here ever prints a key:
 * messages name the bucket, the operation and the blob, and the endpoint without any user info.
 *
 * Failure policy: the SDK retries network errors, throttling and 5xx with exponential backoff and
 * jitter (`maxAttempts`); what is left after that is one line. A blob whose bytes do not match its
 * name is a BlobCorruptError, which callers treat as permanent (no retry can fix the stored bytes).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { SisaError } from '../util/errors.js';
import { configuredEndpoint, formatS3Url, type S3Location } from './s3Url.js';

export { parseS3Url, formatS3Url, configuredEndpoint, type S3Location } from './s3Url.js';
import { BLOB_KINDS, BlobCorruptError, BlobMissingError, StoreUnavailableError, type BlobKind, type BlobRef, type BlobStore } from './blobStore.js';

export interface S3BlobStoreOptions {
  /** Attempts per request, including the first (SDK standard retry: backoff with jitter). */
  maxAttempts?: number;
  /** Shard files at least this large go up in parts, several at a time. */
  multipartThreshold?: number;
  partSize?: number;
}

const DEFAULT_PART = 8 * 1024 * 1024;

export class S3BlobStore implements BlobStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly endpoint: string | undefined;

  constructor(
    readonly loc: S3Location,
    private readonly o: S3BlobStoreOptions = {},
  ) {
    this.location = formatS3Url(loc);
    // sisa supports Node 20; the SDK's notice about its own future Node requirement would otherwise be
    // printed on every command that touches the store. A user who sets the variable keeps their choice.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.endpoint = configuredEndpoint();
    const envAttempts = Number(process.env.AWS_MAX_ATTEMPTS);
    const config: S3ClientConfig = {
      maxAttempts: o.maxAttempts ?? (Number.isInteger(envAttempts) && envAttempts > 0 ? envAttempts : 5),
      // Checksums the SDK would add by default are not understood by every S3 API server; sisa checks
      // content hashes itself, end to end.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (this.endpoint) {
      // MinIO and most self-hosted S3 APIs serve buckets as paths, not as host names.
      config.endpoint = this.endpoint;
      config.forcePathStyle = true;
      if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) config.region = 'us-east-1';
    }
    this.client = new S3Client(config);
  }

  private key(kind: BlobKind, sha: string): string {
    return `${this.loc.prefix ? `${this.loc.prefix}/` : ''}${kind}/${sha}`;
  }

  private where(): string {
    return this.endpoint ? `${this.location} (${this.endpoint})` : this.location;
  }

  /** One line naming bucket and operation; never the request's headers or credentials. */
  private fail(op: string, err: unknown): SisaError {
    if (err instanceof SisaError) return err;
    const name = (err as { name?: string })?.name ?? '';
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    const b = `bucket '${this.loc.bucket}'`;
    if (name === 'NoSuchBucket') return new SisaError('STATE', `S3 ${op}: ${b} does not exist at ${this.endpoint ?? 'AWS'}`);
    if (name === 'AccessDenied' || name === 'Forbidden' || status === 403)
      return new SisaError('STATE', `S3 ${op}: access denied to ${b} (check the credentials and the bucket policy)`);
    if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch')
      return new SisaError('STATE', `S3 ${op}: ${b} refused the credentials (${name})`);
    if (name === 'CredentialsProviderError') return new SisaError('STATE', `S3 ${op}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)`);
    const code = (err as NodeJS.ErrnoException)?.code;
    const detail = code ?? (status ? `HTTP ${status}` : name || 'error');
    return new StoreUnavailableError(`S3 ${op} on ${this.where()} failed after retries: ${detail}; nothing was committed`, err);
  }

  async has(kind: BlobKind, sha256: string): Promise<{ size: number } | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.key(kind, sha256) }));
      return { size: r.ContentLength ?? 0 };
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      if ((err as { name?: string }).name === 'NotFound' || (err as { name?: string }).name === 'NoSuchKey') {
        // HEAD cannot say which is missing, the key or the bucket; ask once so the message is right.
        await this.assertBucket(`head ${kind} ${sha256.slice(0, 12)}`);
        return null;
      }
      if (status === 404) return null;
      throw this.fail(`head ${kind} ${sha256.slice(0, 12)}`, err);
    }
  }

  private async assertBucket(op: string): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.loc.bucket }));
    } catch (err) {
      // HEAD responses have no body, so the SDK can only say "NotFound"; for a bucket that means this.
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      throw this.fail(op, status === 404 ? Object.assign(new Error('NoSuchBucket'), { name: 'NoSuchBucket' }) : err);
    }
  }

  async put(kind: BlobKind, bytes: Uint8Array): Promise<string> {
    const sha = createHash('sha256').update(bytes).digest('hex');
    if ((await this.has(kind, sha))?.size === bytes.byteLength) return sha;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(kind, sha), Body: bytes, ContentLength: bytes.byteLength }));
    } catch (err) {
      throw this.fail(`put ${kind} ${sha.slice(0, 12)}`, err);
    }
    return sha;
  }

  async putFile(kind: BlobKind, localPath: string, sha256: string): Promise<void> {
    const op = `put ${kind} ${sha256.slice(0, 12)}`;
    const size = (await stat(localPath)).size;
    // Same name and size: the upload already happened (names are content hashes). A different size is
    // a damaged object, which this upload replaces.
    if ((await this.has(kind, sha256))?.size === size) return;
    // Hash while uploading: a local file that changed since its hash was taken must not be stored
    // under the old name.
    const hash = createHash('sha256');
    const body = createReadStream(localPath).pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      }),
    );
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.loc.bucket, Key: this.key(kind, sha256), Body: body },
        partSize: this.o.partSize ?? DEFAULT_PART,
        queueSize: 4,
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (err) {
      throw this.fail(op, err);
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) {
      await this.remove([{ kind, sha256 }]);
      throw new SisaError('STATE', `${localPath} changed while it was uploaded (sha256 ${actual.slice(0, 12)}, expected ${sha256.slice(0, 12)})`);
    }
  }

  async get(kind: BlobKind, sha256: string): Promise<Uint8Array> {
    const ref = { kind, sha256 };
    let bytes: Uint8Array;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(kind, sha256) }));
      bytes = await r.Body!.transformToByteArray();
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new BlobMissingError(ref, this.location);
      throw this.fail(`get ${kind} ${sha256.slice(0, 12)}`, err);
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new BlobCorruptError(ref, this.location, actual);
    return bytes;
  }

  async list(kind?: BlobKind): Promise<(BlobRef & { size: number })[]> {
    const out: (BlobRef & { size: number })[] = [];
    for (const k of kind ? [kind] : BLOB_KINDS) {
      let token: string | undefined;
      do {
        let r;
        try {
          r = await this.client.send(new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: this.key(k, ''), ContinuationToken: token }));
        } catch (err) {
          throw this.fail(`list ${k}`, err);
        }
        for (const o of r.Contents ?? []) {
          const name = o.Key!.slice(this.key(k, '').length);
          out.push({ kind: k, sha256: name, size: o.Size ?? 0 });
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    }
    return out;
  }

  /** Every object under the prefix, whatever its name: verify uses it to find strays. */
  async listKeys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: this.loc.prefix ? `${this.loc.prefix}/` : undefined, ContinuationToken: token }));
      } catch (err) {
        throw this.fail('list', err);
      }
      for (const o of r.Contents ?? []) keys.push(o.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async remove(refs: readonly BlobRef[]): Promise<void> {
    for (let i = 0; i < refs.length; i += 1000) {
      const batch = refs.slice(i, i + 1000);
      let r;
      try {
        r = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.loc.bucket, Delete: { Objects: batch.map((b) => ({ Key: this.key(b.kind, b.sha256) })), Quiet: true } }),
        );
      } catch (err) {
        throw this.fail(`delete ${batch.length} blob(s)`, err);
      }
      const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length) throw new SisaError('STATE', `S3 delete in bucket '${this.loc.bucket}': ${failed.length} object(s) not removed (${failed[0]!.Code} ${failed[0]!.Key})`);
    }
  }

  close(): void {
    this.client.destroy();
  }
}
