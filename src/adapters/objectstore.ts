/**
 * S3-compatible object storage through the AWS SDK for JavaScript v3, in-process. Credentials come only from the
 * SDK's standard chain (environment, shared credentials file, profile); nothing secret is ever taken as an argument.
 */
import type { Readable } from 'node:stream';
import type { S3Client, S3ServiceException } from '@aws-sdk/client-s3';

// The SDK is loaded only by commands that talk to a destination: every other command starts without its weight.
type Sdk = typeof import('@aws-sdk/client-s3');
type Lib = typeof import('@aws-sdk/lib-storage');

import type { Destination } from './s3url.js';

export { parseDestination, type Destination, type LockSetting } from './s3url.js';

/** An object's size and user metadata, as HEAD reports them, and its Object Lock state. */
export interface ObjectInfo {
  size: number;
  metadata: Record<string, string>;
  versionId?: string;
  lockMode?: string;
  lockUntil?: Date;
  legalHold: boolean;
}

/** One version of an object (or a delete marker) in a versioned bucket; key relative to the prefix. */
export interface ObjectVersion {
  key: string;
  versionId: string;
  deleteMarker: boolean;
}

/** Tunables; the defaults suit a nightly job over an ordinary link. */
export interface StoreOptions {
  /** Per HTTP request, without a byte moving (ms). */
  requestTimeoutMs?: number;
  /** Attempts per request, with exponential backoff and jitter between them. */
  maxAttempts?: number;
  /** Multipart part size (bytes); memory held is about partSize x queueSize. */
  partSize?: number;
  queueSize?: number;
}

/** Whether an SDK error is the server's "no such key/bucket" (404). */
export function isNotFound(err: unknown): boolean {
  const e = err as S3ServiceException;
  return e?.$metadata?.httpStatusCode === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey';
}

/** The HTTP status of an SDK error, when it got that far. */
export function httpStatus(err: unknown): number | undefined {
  return (err as S3ServiceException)?.$metadata?.httpStatusCode;
}

/** One destination's objects, with keys relative to its prefix. */
export class ObjectStore {
  readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;

  private constructor(
    readonly dest: Destination,
    opts: StoreOptions,
    private readonly sdk: Sdk,
    private readonly lib: Lib,
  ) {
    this.partSize = opts.partSize ?? 8 * 1024 * 1024;
    this.queueSize = opts.queueSize ?? 4;
    // The pinned SDK supports Node 20 but warns on each start that later releases will not: the pin is deliberate.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new sdk.S3Client({
      region: dest.region,
      endpoint: dest.endpoint,
      forcePathStyle: dest.pathStyle,
      profile: dest.profile,
      // The SDK's default checksums make several S3-compatible servers store the aws-chunked framing inside the
      // object and still answer 200: only send/validate them where the API requires it. We hash with SHA-256 ourselves.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 5,
      retryMode: 'standard',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: opts.requestTimeoutMs ?? 120_000 },
    });
  }

  /** Loads the SDK and makes a client for the destination. */
  static async open(dest: Destination, opts: StoreOptions = {}): Promise<ObjectStore> {
    const [sdk, lib] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
    return new ObjectStore(dest, opts, sdk, lib);
  }

  private key(rel: string): string {
    return this.dest.prefix + rel;
  }

  /** The object's (or one version's) size, metadata and lock, or null when it does not exist. */
  async head(rel: string, signal?: AbortSignal, versionId?: string): Promise<ObjectInfo | null> {
    try {
      const r = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.dest.bucket, Key: this.key(rel), VersionId: versionId }), { abortSignal: signal });
      return { size: r.ContentLength ?? 0, metadata: r.Metadata ?? {}, versionId: r.VersionId, lockMode: r.ObjectLockMode, lockUntil: r.ObjectLockRetainUntilDate, legalHold: r.ObjectLockLegalHoldStatus === 'ON' };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Every object under the prefix (+ `under`), keys relative to the prefix. */
  async list(under = '', signal?: AbortSignal): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.dest.bucket, Prefix: this.key(under), ContinuationToken: token }), { abortSignal: signal });
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key.slice(this.dest.prefix.length), size: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** A small object (a checksum or a manifest); `ifAbsent` makes it a conditional PUT: false when it already existed. */
  async putSmall(rel: string, body: string, opts: { metadata?: Record<string, string>; ifAbsent?: boolean; signal?: AbortSignal } = {}): Promise<boolean> {
    const lock = this.lockParams();
    try {
      const r = await this.client.send(
        new this.sdk.PutObjectCommand({ Bucket: this.dest.bucket, Key: this.key(rel), Body: body, ContentType: 'text/plain; charset=utf-8', Metadata: opts.metadata, IfNoneMatch: opts.ifAbsent ? '*' : undefined, ...lock }),
        { abortSignal: opts.signal },
      );
      await this.ensureLocked(rel, r.VersionId, lock, opts.signal);
      return true;
    } catch (err) {
      if (opts.ifAbsent && httpStatus(err) === 412) return false;
      // Servers without conditional writes answer 501 (or a 400 naming the header): write unconditionally then.
      if (opts.ifAbsent && (httpStatus(err) === 501 || (err as Error).name === 'NotImplemented')) return this.putSmall(rel, body, { ...opts, ifAbsent: false });
      throw err;
    }
  }

  /** Streams `body` up (multipart above one part), holding about partSize x queueSize bytes in memory. */
  async upload(rel: string, body: Readable, opts: { metadata?: Record<string, string>; onBytes?: (n: number) => void; signal?: AbortSignal } = {}): Promise<void> {
    const lock = this.lockParams();
    const up = new this.lib.Upload({
      client: this.client,
      params: { Bucket: this.dest.bucket, Key: this.key(rel), Body: body, Metadata: opts.metadata, ContentType: 'application/octet-stream', ...lock },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false, // a failed upload aborts its multipart upload: no invisible parts left billed
      abortController: opts.signal ? abortControllerFrom(opts.signal) : undefined,
    });
    let last = 0;
    up.on('httpUploadProgress', (p) => {
      if (p.loaded !== undefined && opts.onBytes) {
        opts.onBytes(p.loaded - last);
        last = p.loaded;
      }
    });
    const r = await up.done();
    await this.ensureLocked(rel, r.VersionId, lock, opts.signal);
  }

  /**
   * The retention a write gets when the destination asks for it. Servers (AWS) demand an integrity header on
   * locked writes: SHA-256 then, which the SDK puts in a header for the in-memory bodies these writes have (parts
   * are buffered), never in aws-chunked framing; unlocked writes keep sending no checksum at all.
   */
  private lockParams(): { ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date; ChecksumAlgorithm?: 'SHA256' } {
    const l = this.dest.lock;
    if (!l) return {};
    return { ObjectLockMode: l.mode, ObjectLockRetainUntilDate: new Date(Date.now() + l.days * 86_400_000), ChecksumAlgorithm: 'SHA256' };
  }

  /**
   * Makes sure the version just written holds the retention asked for: some servers (Ceph radosgw 16) accept the
   * lock headers on CreateMultipartUpload but do not apply them; PutObjectRetention sets it afterwards then.
   */
  private async ensureLocked(rel: string, versionId: string | undefined, lock: ReturnType<ObjectStore['lockParams']>, signal?: AbortSignal): Promise<void> {
    if (!lock.ObjectLockRetainUntilDate) return;
    const h = await this.head(rel, signal, versionId);
    // A minute of slack: servers may store the date with second precision.
    if (h?.lockUntil && h.lockUntil.getTime() >= lock.ObjectLockRetainUntilDate.getTime() - 60_000) return;
    // Compliance may be extended but never turned into governance: a compliance lock stays one.
    const Retention = { Mode: h?.lockMode === 'COMPLIANCE' ? 'COMPLIANCE' : lock.ObjectLockMode, RetainUntilDate: lock.ObjectLockRetainUntilDate } as const;
    await this.client.send(new this.sdk.PutObjectRetentionCommand({ Bucket: this.dest.bucket, Key: this.key(rel), VersionId: versionId ?? h?.versionId, Retention }), { abortSignal: signal });
  }

  /** Gives the object's current version the destination's retention when it lacks it (objects an interrupted run left). */
  async retain(rel: string, signal?: AbortSignal): Promise<void> {
    await this.ensureLocked(rel, undefined, this.lockParams(), signal);
  }

  /** Whether the bucket has Object Lock enabled (false when the server says it has no lock configuration). */
  async lockEnabled(signal?: AbortSignal): Promise<boolean> {
    try {
      const r = await this.client.send(new this.sdk.GetObjectLockConfigurationCommand({ Bucket: this.dest.bucket }), { abortSignal: signal });
      return r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      if ((err as Error).name === 'ObjectLockConfigurationNotFoundError' || notImplemented(err)) return false;
      throw err;
    }
  }

  /** Whether the bucket keeps versions (versioning enabled now or suspended after having been enabled). */
  async versioned(signal?: AbortSignal): Promise<boolean> {
    try {
      const r = await this.client.send(new this.sdk.GetBucketVersioningCommand({ Bucket: this.dest.bucket }), { abortSignal: signal });
      return r.Status === 'Enabled' || r.Status === 'Suspended';
    } catch (err) {
      if (notImplemented(err)) return false; // servers without versioning (R2)
      throw err;
    }
  }

  /** Every version and delete marker under the prefix (+ `under`), keys relative to the prefix. */
  async versions(under = '', signal?: AbortSignal): Promise<ObjectVersion[]> {
    const out: ObjectVersion[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(new this.sdk.ListObjectVersionsCommand({ Bucket: this.dest.bucket, Prefix: this.key(under), KeyMarker: keyMarker, VersionIdMarker: versionMarker }), { abortSignal: signal });
      for (const v of r.Versions ?? []) if (v.Key && v.VersionId) out.push({ key: v.Key.slice(this.dest.prefix.length), versionId: v.VersionId, deleteMarker: false });
      for (const v of r.DeleteMarkers ?? []) if (v.Key && v.VersionId) out.push({ key: v.Key.slice(this.dest.prefix.length), versionId: v.VersionId, deleteMarker: true });
      if (!r.IsTruncated) return out;
      keyMarker = r.NextKeyMarker;
      versionMarker = r.NextVersionIdMarker;
    }
  }

  /** Deletes exact versions (and delete markers), which frees their space; throws when the server refused any. */
  async deleteVersions(versions: { key: string; versionId: string }[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < versions.length; i += 1000) {
      const Objects = versions.slice(i, i + 1000).map((v) => ({ Key: this.key(v.key), VersionId: v.versionId }));
      const r = await this.client.send(new this.sdk.DeleteObjectsCommand({ Bucket: this.dest.bucket, Delete: { Objects, Quiet: true } }), { abortSignal: signal });
      if (r.Errors?.length) throw new Error(`the server refused to delete ${r.Errors.length} object version(s), e.g. ${r.Errors[0]!.Key}: ${r.Errors[0]!.Code}`);
    }
  }

  /** The object's bytes as a stream. */
  async download(rel: string, signal?: AbortSignal): Promise<Readable> {
    const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.dest.bucket, Key: this.key(rel) }), { abortSignal: signal });
    return r.Body as Readable;
  }

  /** A small object's text (checksums, manifests), or null when it does not exist. */
  async getText(rel: string, signal?: AbortSignal): Promise<string | null> {
    try {
      const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.dest.bucket, Key: this.key(rel) }), { abortSignal: signal });
      return await r.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Deletes objects (relative keys), 1000 per request; throws when the server refused any. */
  async delete(rels: string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < rels.length; i += 1000) {
      const chunk = rels.slice(i, i + 1000);
      const r = await this.client.send(new this.sdk.DeleteObjectsCommand({ Bucket: this.dest.bucket, Delete: { Objects: chunk.map((k) => ({ Key: this.key(k) })), Quiet: true } }), { abortSignal: signal });
      if (r.Errors?.length) throw new Error(`the server refused to delete ${r.Errors.length} object(s), e.g. ${r.Errors[0]!.Key}: ${r.Errors[0]!.Code}`);
    }
  }

  /** Closes the connection pool so the process can exit. */
  close(): void {
    this.client.destroy();
  }
}

/** Whether the server does not implement the request (501, NotImplemented). */
function notImplemented(err: unknown): boolean {
  return httpStatus(err) === 501 || (err as Error)?.name === 'NotImplemented';
}

function abortControllerFrom(signal: AbortSignal): AbortController {
  const c = new AbortController();
  if (signal.aborted) c.abort();
  else signal.addEventListener('abort', () => c.abort(), { once: true });
  return c;
}
