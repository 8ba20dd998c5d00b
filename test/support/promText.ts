/**
 * A strict reader of the Prometheus text exposition format (0.0.4), enough to check what /metrics serves: every
 * line must be a `# HELP`, a `# TYPE` or a sample `name{label="value",…} number`, or the parse throws.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  /** Sum of the samples of `name` whose labels include `match`. */
  sum(name: string, match?: Record<string, string>): number;
  find(name: string, match?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    const at = `line ${i + 1}: ${line.slice(0, 200)}`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m || !NAME.test(m[2]!)) throw new Error(`bad comment, ${at}`);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`bad type, ${at}`);
        types.set(m[2]!, m[3]!);
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample, ${at}`);
    const labels: Record<string, string> = {};
    let rest = m[3] ?? '';
    while (rest.length > 0) {
      const lm = /^([^=]+)="((?:[^"\\]|\\["\\n])*)"(,|$)/.exec(rest);
      if (!lm || !LABEL_NAME.test(lm[1]!)) throw new Error(`bad labels, ${at}`);
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      rest = rest.slice(lm[0].length);
    }
    // Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes `Nan`).
    const raw = m[4]!.toLowerCase();
    const value = /^\+?inf(inity)?$/.test(raw) ? Infinity : /^-inf(inity)?$/.test(raw) ? -Infinity : raw === 'nan' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`bad value, ${at}`);
    samples.push({ name: m[1]!, labels, value });
  });
  const matches = (s: Sample, name: string, match: Record<string, string> = {}) =>
    s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v);
  return {
    samples,
    types,
    find: (name, match) => samples.filter((s) => matches(s, name, match)),
    sum: (name, match) => samples.filter((s) => matches(s, name, match)).reduce((a, s) => a + s.value, 0),
  };
}
