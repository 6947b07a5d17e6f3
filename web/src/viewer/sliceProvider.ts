// The image tools' data provider: 2D slices from the dataserver binned to the canvas (`size=`), so the
// first image of a 2048² frame is a few hundred kB, and the region in view at full resolution once
// zoomed in far enough that it fits the canvas. Statistics (ROI, histogram) are computed by the
// dataserver on the full-resolution values.
import { ApiError } from '../api';

export interface Meta { kind: string; name: string; shape?: number[]; type?: { dtype?: string } }

export interface Slice {
  values: Float64Array | Float32Array;
  rows: number;
  cols: number;
  /** Full-resolution region the values cover: [row0, row1) x [col0, col1). */
  region: [number, number, number, number];
  /** Binning factor per axis (1 = full resolution). */
  bin: [number, number];
  bytes: number;
}

export interface Stats {
  min: number | null; max: number | null; mean: number | null; std: number | null; count: number;
  nan_count: number; histogram?: { counts: number[]; edges: number[] };
}

function query(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

async function ask(url: string, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, { credentials: 'same-origin', ...init });
  if (response.status === 401) {
    window.location.assign(`/gateway/login?next=${encodeURIComponent(window.location.pathname + window.location.hash)}`);
    throw new ApiError(401, 'not logged in');
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = ((await response.json()) as { error?: string }).error ?? message; } catch { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

async function askJson<T>(url: string): Promise<T> {
  return (await ask(url, { headers: { Accept: 'application/json' } })).json() as Promise<T>;
}

export const getMeta = (file: string, path: string) => askJson<Meta>(`/data/meta?${query({ file, path })}`);
export const getAttrs = (file: string, path: string) => askJson<Record<string, unknown>>(`/data/attr?${query({ file, path })}`);
export const getValues = (file: string, path: string) => askJson<unknown>(`/data/data?${query({ file, path })}`);
export const getDefault = (file: string) =>
  askJson<{ found: boolean; nxdata?: string | null; signal?: string | null }>(`/data/default?${query({ file })}`);
export const getStats = (file: string, path: string, selection: string, bins = 128) =>
  askJson<Stats>(`/data/stats?${query({ file, path, selection, bins: String(bins) })}`);

function typed(buffer: ArrayBuffer, dtype: string): Float32Array | Float64Array {
  const kind = dtype.replace(/^[<>|=]/, '');
  const views: Record<string, (b: ArrayBuffer) => ArrayLike<number> & { length: number }> = {
    f4: (b) => new Float32Array(b), f8: (b) => new Float64Array(b), u1: (b) => new Uint8Array(b), i1: (b) => new Int8Array(b),
    u2: (b) => new Uint16Array(b), i2: (b) => new Int16Array(b), u4: (b) => new Uint32Array(b), i4: (b) => new Int32Array(b),
    b1: (b) => new Uint8Array(b),
  };
  if (kind === 'f4') return new Float32Array(buffer);
  if (kind === 'f8') return new Float64Array(buffer);
  if (kind === 'i8' || kind === 'u8') {
    const big = kind === 'i8' ? new BigInt64Array(buffer) : new BigUint64Array(buffer);
    return Float64Array.from(big, (v) => Number(v));
  }
  const view = views[kind];
  if (!view) throw new Error(`values of type ${dtype} cannot be shown as an image`);
  return Float64Array.from(view(buffer) as ArrayLike<number>);
}

/** The selection text of a 2D slice: `index` for the other dimensions, the region for the two shown. */
export function selectionOf(shape: number[], shown: [number, number], indices: number[], region?: [number, number, number, number]): string {
  return shape.map((n, d) => {
    if (d === shown[0]) return region ? `${region[0]}:${region[1]}` : ':';
    if (d === shown[1]) return region ? `${region[2]}:${region[3]}` : ':';
    return String(Math.min(Math.max(0, indices[d] ?? 0), n - 1));
  }).join(',');
}

/** A 2D slice: binned to at most `target` (rows, cols), or at full resolution when `target` is null. */
export async function getSlice(file: string, path: string, shape: number[], shown: [number, number], indices: number[],
  region: [number, number, number, number] | null, target: [number, number] | null, signal?: AbortSignal): Promise<Slice> {
  const full: [number, number, number, number] = region ?? [0, shape[shown[0]], 0, shape[shown[1]]];
  const slice = await fetchSlice(file, path, selectionOf(shape, shown, indices, region ?? undefined), target, signal);
  return { ...slice, region: full };
}

/** The slice of a selection, before its place in the dataset is known (`region` is left empty). */
export async function fetchSlice(file: string, path: string, selection: string, target: [number, number] | null,
  signal?: AbortSignal): Promise<Slice> {
  const params: Record<string, string> = { file, path, selection, format: 'bin', dtype: 'safe' };
  if (target) params.size = `${Math.max(1, target[0])}x${Math.max(1, target[1])}`;
  const response = await ask(`/data/data?${query(params)}`, { signal });
  const buffer = await response.arrayBuffer();
  const dims = (response.headers.get('X-Hebi-Shape') ?? '').split(',').map(Number);
  const bin = (response.headers.get('X-Hebi-Bin') ?? '1,1').split(',').map(Number);
  const values = typed(buffer, response.headers.get('X-Hebi-Dtype') ?? '<f4');
  const [rows, cols] = dims.length === 2 ? dims : [1, dims[0] ?? values.length];
  return { values, rows, cols, region: [0, 0, 0, 0], bin: [bin[0] ?? 1, bin[1] ?? 1], bytes: buffer.byteLength };
}

/** Where a raw NXtomo's projections start: the first frame whose image_key is 0 (not a dark or flat). */
export async function firstProjection(file: string, datasetPath: string): Promise<number | null> {
  const parts = datasetPath.split('/').filter(Boolean);
  const candidates: string[] = [];
  for (let up = parts.length - 1; up >= 0; up -= 1) {
    const base = `/${parts.slice(0, up).join('/')}`.replace(/\/$/, '');
    candidates.push(`${base}/image_key`, `${base}/instrument/detector/image_key`);
  }
  for (const candidate of candidates) {
    try {
      const keys = await getValues(file, candidate);
      if (Array.isArray(keys)) {
        const first = keys.findIndex((k) => Number(k) === 0);
        return first >= 0 ? first : null;
      }
    } catch { /* not there: try the next place NXtomo files keep it */ }
  }
  return null;
}

export interface SliceDim {
  dim: number;
  size: number;
  label: string;
  /** What each index means, when the NXdata names it: a tuned parameter's values, or an axis's. */
  values?: string[];
  tuned?: string;
}

export interface Layout {
  shown: [number, number];
  indices: number[];
  dims: SliceDim[];
}

/** The NXdata's title (the runner names the tuned values in it), if it has one. */
export async function titleOf(file: string, path: string): Promise<string | null> {
  const group = path.slice(0, path.lastIndexOf('/'));
  try {
    const t = await getValues(file, `${group}/title`);
    return typeof t === 'string' ? t : null;
  } catch {
    return null;
  }
}

function text(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(',') : String(value ?? '');
}

/** How to show a dataset: which two dimensions make the image, where the others start, and what their
 *  indices mean. Reads the NXdata around it (axes, default_slice, a tuned parameter's axis). */
export async function layoutOf(file: string, path: string, shape: number[], groupAttrs?: Promise<Record<string, unknown>>): Promise<Layout> {
  const n = shape.length;
  let shown: [number, number] = [Math.max(0, n - 2), n - 1];
  const indices = shape.map(() => 0);
  const group = path.slice(0, path.lastIndexOf('/')) || '/';
  let axes: string[] = [];
  try {
    const attrs = await (groupAttrs ?? getAttrs(file, group));
    axes = Array.isArray(attrs.axes) ? attrs.axes.map(String) : typeof attrs.axes === 'string' ? [attrs.axes] : [];
    const slice = attrs.default_slice;
    if (Array.isArray(slice) && slice.length === n) {
      const dots = slice.map(String).flatMap((s, d) => (s === '.' ? [d] : []));
      if (dots.length === 2) shown = [dots[0], dots[1]];
      slice.forEach((s, d) => { if (String(s) !== '.' && /^\d+$/.test(String(s))) indices[d] = Number(s); });
    }
  } catch { /* not in an NXdata: the last two dimensions */ }
  const dims: SliceDim[] = [];
  for (let d = 0; d < n; d += 1) {
    if (d === shown[0] || d === shown[1]) continue;
    const name = axes[d] && axes[d] !== '.' ? axes[d] : `dim ${d}`;
    const entry: SliceDim = { dim: d, size: shape[d], label: name };
    if (axes[d] && axes[d] !== '.') {
      try {
        const [values, attrs] = await Promise.all([getValues(file, `${group}/${axes[d]}`), getAttrs(file, `${group}/${axes[d]}`)]);
        const longName = text(attrs.long_name);
        if (axes[d].endsWith('_params')) {
          const parameter = longName.split(':')[0] || axes[d].replace(/_params$/, '');
          entry.tuned = parameter;
          entry.label = parameter;
          const named = longName.includes(' = ') ? longName.slice(longName.indexOf(':') + 1).split(',').map((p) => p.split(' = ')[1]?.trim() ?? p.trim()) : null;
          entry.values = named && named.length === shape[d] ? named : (Array.isArray(values) ? values.map((v) => String(v)) : undefined);
        } else if (Array.isArray(values) && values.length === shape[d]) {
          const units = text(attrs.units);
          entry.values = values.map((v) => `${typeof v === 'number' ? Number(v.toPrecision(6)) : String(v)}${units ? ` ${units}` : ''}`);
        }
      } catch { /* an axis that cannot be read: indices only */ }
    }
    dims.push(entry);
  }
  return { shown, indices, dims };
}
