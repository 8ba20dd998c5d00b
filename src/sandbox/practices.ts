/**
 * The practices one sandbox serves. eClinicalWorks gives each practice its own base URL
 * (`https://{host}/fhir/r4/{practice}`), its own patients and its own quota; here each practice is a whole server of
 * its own (dataset, tokens, rate limiter, stats, export jobs) mounted under `/fhir/r4/{code}` of the one listener.
 * Only the app registrations (clients) are shared: an app is registered with the vendor once and used at every
 * practice. The default practice keeps answering at the root (`/fhir/r4`), so existing base URLs do not change.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createContext, type SandboxContext } from './context';
import { resolveOptions } from './options';
import type { ClinicalType, RateLimitConfig } from './types';
import { mix } from './util/prng';

/** How to create a practice (in-process, `SANDBOX_PRACTICES`, or `POST /_sandbox/practices`). */
export interface PracticeSpec {
  /** Its code, the last segment of its base URL: lowercase letters, digits, `-` and `_` (1–64). */
  code: string;
  /** Default: the server's `patients`. */
  patients?: number;
  /** Default: the server's `resourcesPerPatient`. */
  resourcesPerPatient?: number | Partial<Record<ClinicalType, number>>;
  /** The first N patients have `largePatientFactor` (10) times the resources (default 0). */
  largePatients?: number;
  largePatientFactor?: number;
  /** Default: derived from the server's seed and the code, so practices hold different data. */
  seed?: number;
  /** The practice's own quota (null or absent: unlimited). */
  rateLimit?: RateLimitConfig | null;
}

export interface PracticeInfo {
  code: string;
  /** Path of its FHIR base under the server's origin: `/fhir/r4/{code}`. */
  basePath: string;
  patients: number;
  largePatients: number;
  rateLimit: RateLimitConfig | null;
}

/** A practice's app and admin, built by the sandbox's app module (kept out of here to avoid an import cycle). */
export interface PracticeServer<Admin> {
  handle: RequestHandler;
  admin: Admin;
}

interface Practice<Admin> {
  code: string;
  ctx: SandboxContext;
  server: PracticeServer<Admin>;
}

export class PracticeError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'PracticeError';
  }
}

const CODE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Lowercase path segments the default practice's FHIR API uses itself (types are capitalised, so never a code). */
const RESERVED = new Set(['metadata', 'bulkstatus', 'bulkfiles', 'oauth', 'documents']);

/** `/fhir/r4/{code}{rest}` → the path the practice's own app routes (its server-root layout). */
export function innerPath(rest: string): string {
  if (/^\/(oauth|bulkfiles|documents)(\/|$)/.test(rest)) return rest;
  return `/fhir/r4${rest}`;
}

export class PracticeRegistry<Admin> {
  private readonly practices = new Map<string, Practice<Admin>>();

  constructor(
    private readonly server: SandboxContext,
    private readonly build: (ctx: SandboxContext) => PracticeServer<Admin>,
  ) {}

  create(spec: PracticeSpec): PracticeInfo {
    if (!CODE.test(spec.code) || RESERVED.has(spec.code)) {
      throw new PracticeError(400, `practice code "${spec.code}" must be 1-64 of a-z 0-9 - _ and not one of ${[...RESERVED].join(', ')}`);
    }
    if (this.practices.has(spec.code)) throw new PracticeError(409, `practice "${spec.code}" exists`);
    const base = this.server.options;
    const options = resolveOptions({
      ...base,
      publicUrl: undefined,
      clients: [],
      faults: {},
      export: {},
      patients: spec.patients ?? base.patients,
      resourcesPerPatient: spec.resourcesPerPatient ?? base.resourcesPerPatient,
      largePatients: spec.largePatients ?? 0,
      largePatientFactor: spec.largePatientFactor ?? 10,
      seed: spec.seed ?? mix(base.seed, hashCode(spec.code)),
      rateLimit: spec.rateLimit ?? null,
      // Lists owned by the server's options must not be shared (setTypeKnobs replaces them per practice).
      unsupportedTypes: [...base.unsupportedTypes],
      noPatientSearchTypes: [...base.noPatientSearchTypes],
    });
    const basePath = `/fhir/r4/${spec.code}`;
    const ctx = createContext(options, { parent: this.server, mount: { code: spec.code, root: basePath, fhir: basePath } });
    this.practices.set(spec.code, { code: spec.code, ctx, server: this.build(ctx) });
    return this.info(spec.code);
  }

  has(code: string): boolean {
    return this.practices.has(code);
  }

  info(code: string): PracticeInfo {
    const p = this.get(code);
    return {
      code: p.code,
      basePath: p.ctx.mount.fhir,
      patients: p.ctx.options.patients,
      largePatients: p.ctx.options.largePatients ?? 0,
      rateLimit: p.ctx.limiter.current(),
    };
  }

  list(): PracticeInfo[] {
    return [...this.practices.keys()].map((code) => this.info(code));
  }

  admin(code: string): Admin {
    return this.get(code).server.admin;
  }

  /**
   * Hands `/fhir/r4/{code}/...` of a known practice to that practice's app, with the path it routes. Anything else
   * (the default practice's API, an unknown code) goes on untouched. `req.originalUrl` keeps the URL as sent.
   */
  dispatch(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction): void => {
      const m = /^\/fhir\/r4\/([^/]+)(\/.*)?$/.exec(req.path);
      const practice = m ? this.practices.get(m[1] as string) : undefined;
      if (!m || !practice) {
        next();
        return;
      }
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      req.url = `${innerPath(m[2] ?? '')}${query}`;
      practice.server.handle(req, res, next);
    };
  }

  private get(code: string): Practice<Admin> {
    const p = this.practices.get(code);
    if (!p) throw new PracticeError(404, `unknown practice "${code}"`);
    return p;
  }
}

function hashCode(code: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < code.length; i++) {
    h ^= code.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
