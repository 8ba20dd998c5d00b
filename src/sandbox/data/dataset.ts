/**
 * The sandbox's dataset (what its FHIR server serves; not the service's store, src/store/resources.ts). Base data are generated on demand: per type only a compact index is kept
 * (lastUpdated per item plus two sort orders, ~16 bytes per resource). Changes made through the admin API
 * (updates, additions, deletions) live in a small overlay that is merged into every iteration.
 *
 * Every iteration yields resources in (meta.lastUpdated, id) order, which is what keyset paging and
 * export snapshots rely on.
 */
import { EXTRA_TYPES, RESOURCE_TYPES, type ClinicalType, type FhirResource, type ResourceType } from '../types';
import { iso } from '../util/time';
import { generateClinical, generatePatient, lastUpdatedFor, patientBasics, type GenContext } from './generate';

export const ID_PREFIX: Record<ResourceType, string> = {
  Patient: 'pat',
  Observation: 'obs',
  Condition: 'cond',
  MedicationRequest: 'medrx',
  AllergyIntolerance: 'allergy',
  Immunization: 'imm',
  Procedure: 'proc',
  DiagnosticReport: 'dxr',
  CarePlan: 'careplan',
  Encounter: 'enc',
  Communication: 'comm',
  Task: 'task',
  CareTeam: 'careteam',
  DocumentReference: 'docref',
  Device: 'device',
};

/** Where each type points at its patient (the Patient compartment link). */
export const PATIENT_FIELD: Record<ClinicalType, string> = {
  Observation: 'subject',
  Condition: 'subject',
  MedicationRequest: 'subject',
  AllergyIntolerance: 'patient',
  Immunization: 'patient',
  Procedure: 'subject',
  DiagnosticReport: 'subject',
  CarePlan: 'subject',
  Encounter: 'subject',
  Communication: 'subject',
  Task: 'for',
  CareTeam: 'subject',
  DocumentReference: 'subject',
  Device: 'patient',
};

export interface SortKey {
  lu: number;
  id: string;
}

/** An overlay item: an updated or added resource, or a tombstone. Stored resources are never mutated. */
export interface Extra {
  type: ResourceType;
  id: string;
  lu: number;
  /** Patient index of the compartment (-1: none). */
  patient: number;
  resource: FhirResource;
  deleted: boolean;
  /** Base ordinal this item replaces (-1 when added). */
  baseOrd: number;
}

/** A reference to one resource in iteration order: a base ordinal, or an overlay item. */
export type Ref = number | Extra;

interface TypeIndex {
  type: ResourceType;
  /** Resources of a patient outside the large ones. */
  perPatient: number;
  layout: PatientLayout;
  n: number;
  lu: Float64Array;
  order: Int32Array;
  blockOrder: Int32Array;
}

export interface StoreConfig {
  seed: number;
  patients: number;
  resourcesPerPatient: number | Partial<Record<ClinicalType, number>>;
  dataEpoch: string;
  documentUrl(reportId: string): string;
  /** The server's clock (ms); the clockSkewMs knob offsets it. Default Date.now. */
  now?: () => number;
  /** The first N patients have `largePatientFactor` times the resources of each clinical type (default 0). */
  largePatients?: number;
  /** How many times larger those patients are (default 10). */
  largePatientFactor?: number;
}

/**
 * Where each patient's resources of one type sit among the type's base ordinals: the `large` first patients hold
 * `per * factor` each, the rest `per` each, one contiguous block per patient. Ordinal arithmetic, no table, so a
 * practice of 10 large patients among 10,000 costs no memory beyond the resources themselves.
 */
export class PatientLayout {
  private readonly bigBlock: number;
  private readonly bigTotal: number;
  constructor(
    readonly per: number,
    private readonly large: number,
    factor: number,
  ) {
    this.bigBlock = per * factor;
    this.bigTotal = large * this.bigBlock;
  }

  count(p: number): number {
    return p < this.large ? this.bigBlock : this.per;
  }

  offset(p: number): number {
    return p < this.large ? p * this.bigBlock : this.bigTotal + (p - this.large) * this.per;
  }

  total(patients: number): number {
    return this.offset(patients);
  }

  /** The patient a base ordinal belongs to (ordinals are < total). */
  patientOf(ord: number): number {
    if (ord < this.bigTotal) return Math.floor(ord / this.bigBlock);
    return this.large + Math.floor((ord - this.bigTotal) / this.per);
  }
}

export interface IterateOptions {
  /** Restrict to these patient indexes (null: all). */
  patients?: ReadonlySet<number> | null;
  /** Only items strictly after this key. */
  after?: SortKey | null;
  /** Only items with lastUpdated <= maxLu. */
  maxLu?: number;
}

export interface GroupDef {
  id: string;
  name: string;
  members: number[];
}

export class SandboxDataset {
  readonly seed: number;
  readonly basePatients: number;
  readonly largePatients: number;
  readonly largePatientFactor: number;
  private readonly epochMs: number;
  private readonly indexes = new Map<ResourceType, TypeIndex>();
  private readonly overrides = new Map<ResourceType, Map<number, Extra>>();
  private readonly extrasById = new Map<ResourceType, Map<string, Extra>>();
  /** Live overlay items per type, sorted by (lu, id). */
  private readonly extras = new Map<ResourceType, Extra[]>();
  private readonly addedPatients = new Map<string, number>();
  private nextPatientIndex: number;
  private lastStamp = 0;
  private readonly clock: () => number;
  private addCounter = 0;
  /** Bumped on every change (cache key for counts). */
  version = 0;
  readonly gen: GenContext;

  constructor(cfg: StoreConfig) {
    this.seed = cfg.seed;
    this.clock = cfg.now ?? Date.now;
    this.basePatients = cfg.patients;
    this.nextPatientIndex = cfg.patients;
    this.epochMs = Math.min(Date.parse(cfg.dataEpoch), Date.now());
    const large = cfg.largePatients ?? 0;
    const factor = cfg.largePatientFactor ?? 10;
    if (!Number.isInteger(large) || large < 0 || large > cfg.patients) throw new Error(`largePatients must be 0..patients`);
    if (!Number.isInteger(factor) || factor < 1) throw new Error(`largePatientFactor must be a positive integer`);
    this.largePatients = large;
    this.largePatientFactor = factor;
    const per = (t: ClinicalType): number => {
      const extra = (EXTRA_TYPES as readonly string[]).includes(t);
      const v =
        typeof cfg.resourcesPerPatient === 'number' ? (extra ? 0 : cfg.resourcesPerPatient) : (cfg.resourcesPerPatient[t] ?? (extra ? 0 : 3));
      if (!Number.isInteger(v) || v < 0 || v > 9999) throw new Error(`resourcesPerPatient for ${t} must be 0..9999`);
      // Ids carry the resource's number within its patient in 4 digits.
      if (large > 0 && v * factor > 9999) throw new Error(`resourcesPerPatient for ${t} times largePatientFactor must be at most 9999`);
      return v;
    };
    this.gen = {
      seed: cfg.seed,
      patientId: (p) => this.patientId(p),
      resourceId: (t, p, k) => `${ID_PREFIX[t]}-${pad(p, 6)}-${pad(k, 4)}`,
      perPatient: (t) => this.indexes.get(t)?.perPatient ?? per(t),
      documentUrl: cfg.documentUrl,
    };
    for (const type of RESOURCE_TYPES) {
      this.indexes.set(type, this.buildIndex(type, type === 'Patient' ? 1 : per(type)));
      this.overrides.set(type, new Map());
      this.extrasById.set(type, new Map());
      this.extras.set(type, []);
    }
  }

  private buildIndex(type: ResourceType, perPatient: number): TypeIndex {
    // Patient is one per patient whatever its size; the clinical types grow with a large patient.
    const layout = new PatientLayout(perPatient, type === 'Patient' ? 0 : this.largePatients, this.largePatientFactor);
    const n = layout.total(this.basePatients);
    const lu = new Float64Array(n);
    for (let ord = 0; ord < n; ord++) {
      const p = layout.patientOf(ord);
      lu[ord] = lastUpdatedFor(this.seed, type, p, ord - layout.offset(p), this.epochMs);
    }
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const blockOrder = order.slice();
    order.sort((a, b) => (lu[a] as number) - (lu[b] as number) || a - b);
    blockOrder.sort((a, b) => layout.patientOf(a) - layout.patientOf(b) || (lu[a] as number) - (lu[b] as number) || a - b);
    return { type, perPatient, layout, n, lu, order, blockOrder };
  }

  private index(type: ResourceType): TypeIndex {
    const idx = this.indexes.get(type);
    if (!idx) throw new Error(`unknown type ${type}`);
    return idx;
  }

  patientId(p: number): string {
    return `pat-${pad(p, 6)}`;
  }

  /** Index of a patient id (base or added), or -1. */
  patientIndex(id: string): number {
    const m = /^pat-(\d{6})$/.exec(id);
    if (m) {
      const p = Number(m[1]);
      if (p < this.basePatients) return p;
    }
    return this.addedPatients.get(id) ?? -1;
  }

  /** A strictly increasing timestamp (ms) for changes and export transaction times. */
  stamp(): number {
    this.lastStamp = Math.max(this.clock(), this.lastStamp + 1);
    return this.lastStamp;
  }

  perPatient(type: ResourceType): number {
    return this.index(type).perPatient;
  }

  baseCount(type: ResourceType): number {
    return this.index(type).n;
  }

  idOf(type: ResourceType, ref: Ref): string {
    if (typeof ref !== 'number') return ref.id;
    if (type === 'Patient') return this.patientId(ref);
    const layout = this.index(type).layout;
    const p = layout.patientOf(ref);
    return this.gen.resourceId(type, p, ref - layout.offset(p));
  }

  luOf(type: ResourceType, ref: Ref): number {
    return typeof ref === 'number' ? (this.index(type).lu[ref] as number) : ref.lu;
  }

  patientOf(type: ResourceType, ref: Ref): number {
    if (typeof ref !== 'number') return ref.patient;
    return type === 'Patient' ? ref : this.index(type).layout.patientOf(ref);
  }

  /** The resource JSON a ref stands for (generated for base items). */
  resourceOf(type: ResourceType, ref: Ref): FhirResource {
    if (typeof ref !== 'number') return ref.resource;
    const idx = this.index(type);
    const lu = idx.lu[ref] as number;
    if (type === 'Patient') return generatePatient(this.gen, ref, lu);
    const p = idx.layout.patientOf(ref);
    return generateClinical(this.gen, type, p, ref - idx.layout.offset(p), lu);
  }

  private baseOrd(type: ResourceType, id: string): number {
    const idx = this.index(type);
    if (type === 'Patient') {
      const m = /^pat-(\d{6})$/.exec(id);
      const p = m ? Number(m[1]) : -1;
      return p >= 0 && p < this.basePatients ? p : -1;
    }
    const m = new RegExp(`^${ID_PREFIX[type]}-(\\d{6})-(\\d{4})$`).exec(id);
    if (!m) return -1;
    const p = Number(m[1]);
    const k = Number(m[2]);
    if (p >= this.basePatients || k >= idx.layout.count(p)) return -1;
    return idx.layout.offset(p) + k;
  }

  /** Current ref for an id: live resource, 'deleted' (tombstone) or null (never existed). */
  lookup(type: ResourceType, id: string): Ref | 'deleted' | null {
    const extra = this.extrasById.get(type)?.get(id);
    if (extra) return extra.deleted ? 'deleted' : extra;
    const ord = this.baseOrd(type, id);
    return ord >= 0 ? ord : null;
  }

  get(type: ResourceType, id: string): FhirResource | 'deleted' | null {
    const ref = this.lookup(type, id);
    if (ref === null || ref === 'deleted') return ref;
    return this.resourceOf(type, ref);
  }

  private compare(type: ResourceType, a: Ref, b: Ref): number {
    const la = this.luOf(type, a);
    const lb = this.luOf(type, b);
    if (la !== lb) return la - lb;
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    const ia = this.idOf(type, a);
    const ib = this.idOf(type, b);
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  }

  private afterKey(type: ResourceType, ref: Ref, key: SortKey): boolean {
    const lu = this.luOf(type, ref);
    if (lu !== key.lu) return lu > key.lu;
    return this.idOf(type, ref) > key.id;
  }

  keyOf(type: ResourceType, ref: Ref): SortKey {
    return { lu: this.luOf(type, ref), id: this.idOf(type, ref) };
  }

  /** Iterates live resources of a type in (lastUpdated, id) order. */
  *iterate(type: ResourceType, opts: IterateOptions = {}): Generator<Ref> {
    const idx = this.index(type);
    const overrides = this.overrides.get(type) as Map<number, Extra>;
    const patients = opts.patients ?? null;
    const maxLu = opts.maxLu ?? Infinity;
    const after = opts.after ?? null;

    let base: Int32Array;
    if (patients === null) {
      base = idx.order;
    } else {
      const parts: Int32Array[] = [];
      for (const p of patients) {
        if (p >= 0 && p < this.basePatients && idx.layout.count(p) > 0) {
          const from = idx.layout.offset(p);
          parts.push(idx.blockOrder.subarray(from, from + idx.layout.count(p)));
        }
      }
      if (parts.length === 1) base = parts[0] as Int32Array;
      else {
        const total = parts.reduce((s, a) => s + a.length, 0);
        base = new Int32Array(total);
        let off = 0;
        for (const part of parts) {
          base.set(part, off);
          off += part.length;
        }
        base.sort((a, b) => (idx.lu[a] as number) - (idx.lu[b] as number) || a - b);
      }
    }
    let bi = after ? this.lowerBound(type, base.length, (i) => base[i] as number, after) : 0;
    const extras = (this.extras.get(type) as Extra[]).filter((e) => patients === null || patients.has(e.patient));
    let ei = after ? this.lowerBound(type, extras.length, (i) => extras[i] as Extra, after) : 0;

    for (;;) {
      while (bi < base.length && overrides.has(base[bi] as number)) bi++;
      const b = bi < base.length ? (base[bi] as number) : undefined;
      const e = ei < extras.length ? extras[ei] : undefined;
      let next: Ref;
      if (b === undefined && e === undefined) return;
      if (b === undefined) {
        next = e as Extra;
        ei++;
      } else if (e === undefined || this.compare(type, b, e) < 0) {
        next = b;
        bi++;
      } else {
        next = e;
        ei++;
      }
      if (this.luOf(type, next) > maxLu) return;
      yield next;
    }
  }

  /** First position whose item is strictly after key. */
  private lowerBound(type: ResourceType, length: number, at: (i: number) => Ref, key: SortKey): number {
    let lo = 0;
    let hi = length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.afterKey(type, at(mid), key)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Tombstones of a type deleted after `sinceMs` and at or before `untilMs`. */
  deletedSince(type: ResourceType, sinceMs: number, untilMs: number): Extra[] {
    return [...(this.extrasById.get(type) as Map<string, Extra>).values()]
      .filter((e) => e.deleted && e.lu > sinceMs && e.lu <= untilMs)
      .sort((a, b) => a.lu - b.lu || (a.id < b.id ? -1 : 1));
  }

  // ---- changes (admin) -------------------------------------------------------------------------

  private insertExtra(type: ResourceType, extra: Extra): void {
    const list = this.extras.get(type) as Extra[];
    const key = { lu: extra.lu, id: extra.id };
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = list[mid] as Extra;
      if (m.lu > key.lu || (m.lu === key.lu && m.id > key.id)) hi = mid;
      else lo = mid + 1;
    }
    list.splice(lo, 0, extra);
  }

  private removeExtra(type: ResourceType, extra: Extra): void {
    const list = this.extras.get(type) as Extra[];
    const i = list.indexOf(extra);
    if (i >= 0) list.splice(i, 1);
  }

  private compartmentOf(type: ResourceType, resource: FhirResource): number {
    if (type === 'Patient') return resource.id ? this.patientIndex(resource.id) : -1;
    const field = resource[PATIENT_FIELD[type as ClinicalType]] as { reference?: unknown } | undefined;
    const ref = typeof field?.reference === 'string' ? field.reference : '';
    const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref);
    return m ? this.patientIndex(m[1] as string) : -1;
  }

  /**
   * Replaces a resource with a new version (shallow-merging `changes` into the current content).
   * Bumps meta.versionId and meta.lastUpdated. Returns the new version, or null when not found.
   */
  update(type: ResourceType, id: string, changes: Record<string, unknown> = {}): FhirResource | null {
    const current = this.lookup(type, id);
    if (current === null || current === 'deleted') return null;
    const old = this.resourceOf(type, current);
    const lu = this.stamp();
    const prevVersion = Number(old.meta?.versionId ?? '1');
    const resource: FhirResource = {
      ...old,
      ...changes,
      resourceType: type,
      id,
      meta: { ...(old.meta ?? {}), versionId: String(Number.isFinite(prevVersion) ? prevVersion + 1 : 2), lastUpdated: iso(lu) },
    };
    this.replace(type, current, resource, lu, false);
    return resource;
  }

  /** Deletes a resource (it then reads as 410 and shows in export `deleted`). */
  delete(type: ResourceType, id: string): boolean {
    const current = this.lookup(type, id);
    if (current === null || current === 'deleted') return false;
    const old = this.resourceOf(type, current);
    this.replace(type, current, old, this.stamp(), true);
    return true;
  }

  private replace(type: ResourceType, current: Ref, resource: FhirResource, lu: number, deleted: boolean): void {
    const extra: Extra = {
      type,
      id: resource.id as string,
      lu,
      patient: typeof current === 'number' ? this.patientOf(type, current) : current.patient,
      resource,
      deleted,
      baseOrd: typeof current === 'number' ? current : current.baseOrd,
    };
    if (typeof current !== 'number') this.removeExtra(type, current);
    if (extra.baseOrd >= 0) (this.overrides.get(type) as Map<number, Extra>).set(extra.baseOrd, extra);
    (this.extrasById.get(type) as Map<string, Extra>).set(extra.id, extra);
    if (!deleted) this.insertExtra(type, extra);
    this.version++;
  }

  /** Adds a new resource (id generated when missing). Returns the stored version. */
  add(type: ResourceType, input: FhirResource): FhirResource {
    const id = input.id ?? `${ID_PREFIX[type]}-new-${pad(++this.addCounter, 6)}`;
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw new Error(`invalid id ${id}`);
    const existing = this.lookup(type, id);
    if (existing !== null && existing !== 'deleted') throw new Error(`${type}/${id} already exists`);
    const lu = this.stamp();
    const resource: FhirResource = { ...input, resourceType: type, id, meta: { ...(input.meta ?? {}), versionId: '1', lastUpdated: iso(lu) } };
    let patient: number;
    if (type === 'Patient') {
      patient = this.patientIndex(id);
      if (patient < 0) {
        patient = this.nextPatientIndex++;
        this.addedPatients.set(id, patient);
      }
    } else {
      patient = this.compartmentOf(type, resource);
      if (patient < 0) throw new Error(`${type}.${PATIENT_FIELD[type as ClinicalType]} must reference an existing Patient`);
    }
    const extra: Extra = { type, id, lu, patient, resource, deleted: false, baseOrd: -1 };
    const old = (this.extrasById.get(type) as Map<string, Extra>).get(id);
    if (old) extra.baseOrd = old.baseOrd;
    if (extra.baseOrd >= 0) (this.overrides.get(type) as Map<number, Extra>).set(extra.baseOrd, extra);
    (this.extrasById.get(type) as Map<string, Extra>).set(id, extra);
    this.insertExtra(type, extra);
    this.version++;
    return resource;
  }

  // ---- patients and groups ---------------------------------------------------------------------

  /** All live patient indexes (base and added). */
  livePatients(): number[] {
    const out: number[] = [];
    const overrides = this.overrides.get('Patient') as Map<number, Extra>;
    for (let p = 0; p < this.basePatients; p++) if (!overrides.get(p)?.deleted) out.push(p);
    for (const [id, p] of this.addedPatients) if (this.lookup('Patient', id) !== 'deleted') out.push(p);
    return out;
  }

  patientSummary(p: number): { id: string; name: string; birthDate: string; gender: string } {
    const id = this.patientIdOfIndex(p);
    const res = this.get('Patient', id);
    if (res && res !== 'deleted') {
      const name = (res.name as { text?: string; given?: string[]; family?: string }[] | undefined)?.[0];
      return {
        id,
        name: name?.text ?? `${name?.given?.join(' ') ?? ''} ${name?.family ?? ''}`.trim(),
        birthDate: String(res.birthDate ?? ''),
        gender: String(res.gender ?? ''),
      };
    }
    const b = patientBasics(this.seed, p);
    return { id, name: `${b.given} ${b.family}`, birthDate: b.birthDate, gender: b.gender };
  }

  patientIdOfIndex(p: number): string {
    if (p < this.basePatients) return this.patientId(p);
    for (const [id, idx] of this.addedPatients) if (idx === p) return id;
    throw new Error(`no patient ${p}`);
  }

  /** Groups served: `all` plus up to 10 contiguous cohorts (`cohort-1`...). */
  groups(): GroupDef[] {
    const all = this.livePatients();
    const out: GroupDef[] = [{ id: 'all', name: 'All patients', members: all }];
    const n = this.basePatients;
    const cohorts = Math.min(10, Math.max(1, Math.floor(n / 2)));
    const size = Math.ceil(n / cohorts);
    for (let g = 0; g < cohorts; g++) {
      const members: number[] = [];
      for (let p = g * size; p < Math.min(n, (g + 1) * size); p++) members.push(p);
      if (members.length > 0) out.push({ id: `cohort-${g + 1}`, name: `Cohort ${g + 1}`, members });
    }
    return out;
  }

  groupResource(def: GroupDef): FhirResource {
    return {
      resourceType: 'Group',
      id: def.id,
      meta: { versionId: '1', lastUpdated: iso(this.epochMs) },
      type: 'person',
      actual: true,
      name: def.name,
      quantity: def.members.length,
      member: def.members.map((p) => ({ entity: { reference: `Patient/${this.patientIdOfIndex(p)}` } })),
    };
  }

  countLive(type: ResourceType): number {
    const overrides = this.overrides.get(type) as Map<number, Extra>;
    const added = [...(this.extrasById.get(type) as Map<string, Extra>).values()].filter((e) => e.baseOrd < 0 && !e.deleted).length;
    const deletedBase = [...overrides.values()].filter((e) => e.deleted).length;
    return this.index(type).n - deletedBase + added;
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
