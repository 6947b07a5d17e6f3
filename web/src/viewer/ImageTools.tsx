// The Viewer's image tools, DAWN's daily ones: a slice binned to the canvas at first and at full
// resolution once zoomed in, a contrast editor with the slice's histogram, a line profile drawn
// anywhere, an ROI box with statistics, and a second dataset side by side with the difference.
// A raw NXtomo opens on its first projection (not a dark or flat), tuned results are browsed by their
// values, and the address keeps the file, dataset, slice, colour map, zoom and comparison.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { href } from '../route';
import ImageCanvas, { Overlay, Point } from './ImageCanvas';
import { COLORMAPS } from './colormaps';
import { fmt, Histogram, Profile } from './Plots';
import {
  fetchSlice, firstProjection, getAttrs, getDefault, getMeta, getSlice, getStats, Layout, layoutOf, selectionOf, Slice, Stats, titleOf,
} from './sliceProvider';
import './tools.css';

type Tool = 'zoom' | 'profile' | 'roi';
type Region = [number, number, number, number];

declare global {
  // When the first image was drawn (ms since the tools opened, and since the page's navigation):
  // read by bench/viewer and the Chromium tests.
  interface Window { __hebiFirstImage?: number; __hebiFirstImageAt?: number }
}

function numbers(text: string | null): number[] | null {
  if (!text) return null;
  const parts = text.split(',').map(Number);
  return parts.every((n) => Number.isInteger(n) && n >= 0) ? parts : null;
}

function percentile(stats: Stats, q: number): number | null {
  const h = stats.histogram;
  if (!h || !h.counts.length) return null;
  const total = h.counts.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < h.counts.length; i += 1) {
    seen += h.counts[i];
    if (seen >= q * total) return h.edges[i + 1];
  }
  return h.edges[h.edges.length - 1];
}

/** Until the histogram is in: the shown values' own range. */
function finiteRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity; let hi = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : [0, 1];
}

function sampleLine(slice: Slice, [a, b]: [Point, Point]): number[] {
  const toArray = ([r, c]: Point): Point => [(r - slice.region[0]) / slice.bin[0], (c - slice.region[2]) / slice.bin[1]];
  const [p, q] = [toArray(a), toArray(b)];
  const steps = Math.max(2, Math.ceil(Math.hypot(q[0] - p[0], q[1] - p[1])) + 1);
  const out: number[] = [];
  for (let i = 0; i < steps; i += 1) {
    const t = i / (steps - 1);
    const row = Math.min(slice.rows - 1, Math.max(0, Math.floor(p[0] + (q[0] - p[0]) * t)));
    const col = Math.min(slice.cols - 1, Math.max(0, Math.floor(p[1] + (q[1] - p[1]) * t)));
    out.push(slice.values[row * slice.cols + col]);
  }
  return out;
}

function boxRegion([a, b]: [Point, Point], shape: [number, number]): Region {
  const r0 = Math.max(0, Math.floor(Math.min(a[0], b[0])));
  const r1 = Math.min(shape[0], Math.max(r0 + 1, Math.ceil(Math.max(a[0], b[0]))));
  const c0 = Math.max(0, Math.floor(Math.min(a[1], b[1])));
  const c1 = Math.min(shape[1], Math.max(c0 + 1, Math.ceil(Math.max(a[1], b[1]))));
  return [r0, r1, c0, c1];
}

export default function ImageTools({ file, params }: { file: string; params: URLSearchParams }) {
  const asked = params.get('path');
  const [path, setPath] = useState<string | null>(asked);
  const [shape, setShape] = useState<number[] | null>(null);
  const [layout, setLayout] = useState<Layout | null>(null);
  const [indices, setIndices] = useState<number[]>([]);
  const [cmap, setCmap] = useState(params.get('cmap') && COLORMAPS.includes(params.get('cmap') as string) ? params.get('cmap') as string : 'Viridis');
  const [region, setRegion] = useState<Region | null>(() => { const z = numbers(params.get('zoom')); return z?.length === 4 ? z as Region : null; });
  const [fullRes, setFullRes] = useState(params.get('res') === 'full');
  const [slice, setSlice] = useState<Slice | null>(null);
  // The selection the shown slice is of: until a new slice is in, the old one stays on the canvas.
  const [sliceOf, setSliceOf] = useState<string | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [window_, setWindow] = useState<[number, number] | null>(null);
  const [tool, setTool] = useState<Tool>('profile');
  const [overlay, setOverlay] = useState<Overlay>({});
  const [profile, setProfile] = useState<{ values: number[]; length: number } | null>(null);
  const [roi, setRoi] = useState<{ region: Region; stats: Stats | null } | null>(null);
  const [compare, setCompare] = useState<string>(params.get('compare') ?? '');
  const [compareDraft, setCompareDraft] = useState<string>(params.get('compare') ?? '');
  const [other, setOther] = useState<Slice | null>(null);
  const [otherError, setOtherError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [title, setTitle] = useState<string | null>(null);
  const started = useRef(performance.now());
  const prefetched = useRef<{ key: string; promise: Promise<Slice> } | null>(null);
  const size = compare ? 420 : 640;
  const ratio = window.devicePixelRatio || 1;
  const target: [number, number] = [Math.round(size * ratio), Math.round(size * ratio)];

  // 1. Which dataset: the one asked for, or the file's NeXus default signal.
  useEffect(() => {
    setError(null);
    if (asked) { setPath(asked); return; }
    getDefault(file).then((d) => {
      if (d.signal) setPath(d.signal); else setError('This file has no image to show: pick a dataset in the Explore view.');
    }, (e: Error) => setError(e.message));
  }, [file, asked]);

  // 2. Its shape and layout, and where to start (the URL's slice, NXdata's default_slice, a raw NXtomo's
  // first projection).
  useEffect(() => {
    if (!path) return;
    let live = true;
    setShape(null); setLayout(null); setSlice(null); setSliceOf(null); setWindow(null); setNote(null);
    (async () => {
      // The dataset and its NXdata's attributes at once: the first image waits for both, nothing else.
      // When the address names the slice (a reload, a link), the slice is asked for at the same time, on
      // the guess that the image is the last two dimensions; it is used only if the layout agrees.
      const urlSlice = numbers(params.get('slice'));
      if (urlSlice && !region) {
        const selection = [...urlSlice, ':', ':'].join(',');
        const promise = fetchSlice(file, path, selection, fullRes ? null : target);
        // Shown as soon as it comes, in a provisional place (the shape is not known yet); its place
        // is set when the layout is in (the same promise's next handler, which always runs after).
        promise.then((s) => { if (live) setSlice((now) => now ?? { ...s, region: [0, s.rows * s.bin[0], 0, s.cols * s.bin[1]] }); },
          () => undefined);
        prefetched.current = { key: `${selection}|${fullRes ? 'full' : target.join('x')}`, promise };
      }
      const group = path.slice(0, path.lastIndexOf('/')) || '/';
      const groupAttrs = getAttrs(file, group).catch(() => ({} as Record<string, unknown>));
      const meta = await getMeta(file, path);
      if (meta.kind !== 'dataset' || !meta.shape || meta.shape.length < 2) {
        throw new Error(`${path} is not an image or a stack of images (it is a ${meta.kind}${meta.shape ? ` of shape ${meta.shape.join(' × ')}` : ''})`);
      }
      const found = await layoutOf(file, path, meta.shape, groupAttrs);
      const start = [...found.indices];
      const fromUrl = numbers(params.get('slice'));
      if (fromUrl && fromUrl.length === found.dims.length) {
        found.dims.forEach((d, i) => { start[d.dim] = Math.min(fromUrl[i], d.size - 1); });
      } else if (meta.shape.length === 3 && found.shown[0] === 1) {
        const first = await firstProjection(file, path);
        if (first !== null) {
          start[0] = first;
          if (first > 0) setNote(`Opened on frame ${first}, the first projection: frames 0 to ${first - 1} are darks and flats.`);
        }
      }
      if (!live) return;
      setShape(meta.shape); setLayout(found); setIndices(start);
      titleOf(file, path).then((t) => live && setTitle(t), () => undefined);
    })().catch((e: Error) => live && setError(e.message));
    return () => { live = false; };
  }, [file, path]);

  const shown: [number, number] | null = shape && layout ? [shape[layout.shown[0]], shape[layout.shown[1]]] : null;

  // 3. The slice (binned to the canvas unless full resolution is asked for), and its statistics.
  useEffect(() => {
    if (!path || !shape || !layout) return;
    const abort = new AbortController();
    const selection = selectionOf(shape, layout.shown, indices);
    const key = `${selection}|${fullRes ? 'full' : target.join('x')}`;
    const early = !region && prefetched.current?.key === key ? prefetched.current.promise : null;
    prefetched.current = null;
    const full: Region = [0, shape[layout.shown[0]], 0, shape[layout.shown[1]]];
    (early ? early.then((s) => ({ ...s, region: full })) : getSlice(file, path, shape, layout.shown, indices, region, fullRes ? null : target, abort.signal)).then((s) => {
      if (abort.signal.aborted) return;
      setSlice(s); setSliceOf(selection); setError(null);
    }, (e: Error) => { if (e.name !== 'AbortError') setError(e.message); });
    return () => abort.abort();
  }, [file, path, shape, layout, indices, region, fullRes, target[0]]);

  // The histogram reads the whole slice at full resolution: asked for once the slice's image is there
  // (on opening, and again after each step to another slice), so it never delays the image (both would
  // share the session's two cores).
  const sliceKey = shape && layout ? selectionOf(shape, layout.shown, indices) : '';
  const sliceReady = slice !== null && slice.region.length === 4 && sliceOf === sliceKey;
  useEffect(() => {
    if (!path || !shape || !layout || !sliceReady) return;
    let live = true;
    getStats(file, path, sliceKey, 128).then((s) => {
      if (!live) return;
      setStats(s);
      setWindow((w) => w ?? [s.min ?? 0, s.max ?? 1]);
    }, () => undefined);
    return () => { live = false; };
  }, [file, path, sliceKey, sliceReady]);

  // 4. The dataset compared with: same slice, same binning, so the two can be subtracted.
  useEffect(() => {
    setOther(null); setOtherError(null);
    if (!compare || !shape || !layout) return;
    const [otherFile, otherPath] = compare.includes('::') ? compare.split('::') : [file, compare];
    const abort = new AbortController();
    getMeta(otherFile, otherPath).then((m) => {
      if (!m.shape || m.shape.length !== shape.length) throw new Error(`${otherPath} has shape ${m.shape?.join(' × ') ?? 'none'}, not ${shape.join(' × ')}`);
      return getSlice(otherFile, otherPath, m.shape, layout.shown, indices, region, fullRes ? null : target, abort.signal);
    }).then(setOther, (e: Error) => { if (e.name !== 'AbortError') setOtherError(e.message); });
    return () => abort.abort();
  }, [compare, file, shape, layout, indices, region, fullRes, target[0]]);

  // The place in the address: a reload or a shared link comes back here.
  useEffect(() => {
    if (!path || !layout) return;
    const p: Record<string, string> = { file, path, view: 'tools', cmap };
    if (layout.dims.length) p.slice = layout.dims.map((d) => indices[d.dim] ?? 0).join(',');
    if (region) p.zoom = region.join(',');
    if (compare) p.compare = compare;
    if (fullRes) p.res = 'full';
    window.history.replaceState(null, '', href('viewer', p));
  }, [file, path, layout, indices, cmap, region, compare, fullRes]);

  const difference = useMemo(() => {
    if (!slice || !other) return null;
    if (slice.rows !== other.rows || slice.cols !== other.cols) return { error: `The slices differ in size (${slice.rows} × ${slice.cols} and ${other.rows} × ${other.cols}).` };
    const values = new Float32Array(slice.rows * slice.cols);
    let big = 0; let sum = 0; let n = 0;
    for (let i = 0; i < values.length; i += 1) {
      const d = slice.values[i] - other.values[i];
      values[i] = d;
      if (Number.isFinite(d)) { big = Math.max(big, Math.abs(d)); sum += Math.abs(d); n += 1; }
    }
    return { slice: { ...slice, values } as Slice, limit: big || 1, meanAbs: n ? sum / n : 0, maxAbs: big };
  }, [slice, other]);

  const onDrawn = useCallback(() => {
    if (window.__hebiFirstImage === undefined) {
      window.__hebiFirstImage = performance.now() - started.current;
      window.__hebiFirstImageAt = performance.now();
    }
  }, []);

  const onDrag = (from: Point, to: Point, done: boolean) => {
    if (!shown || !slice || !shape || !layout || !path) return;
    if (tool === 'profile') {
      setOverlay((o) => ({ ...o, line: [from, to] }));
      setProfile({ values: sampleLine(slice, [from, to]), length: Math.hypot(to[0] - from[0], to[1] - from[1]) });
    } else if (tool === 'roi') {
      setOverlay((o) => ({ ...o, box: [from, to] }));
      if (done) {
        const box = boxRegion([from, to], shown);
        setRoi({ region: box, stats: null });
        getStats(file, path, selectionOf(shape, layout.shown, indices, box), 0).then(
          (s) => setRoi({ region: box, stats: s }), (e: Error) => setError(e.message));
      }
    } else {
      setOverlay((o) => ({ ...o, box: done ? undefined : [from, to] }));
      if (done) {
        const box = boxRegion([from, to], shown);
        if (box[1] - box[0] >= 4 && box[3] - box[2] >= 4) { setRegion(box); setOverlay({}); setProfile(null); setRoi(null); }
      }
    }
  };

  if (error) return <p className="error" role="alert">{error}</p>;
  if (!path || !shape || !layout || !shown) {
    if (!slice) return <p>Opening the image…</p>;
    const [first, last] = finiteRange(slice.values);
    return (
      <div className="vt" data-testid="image-tools">
        <p className="desc">Opening {path}…</p>
        <ImageCanvas slice={slice} min={first} max={last} cmap={cmap} size={size} label="Image" testId="image-early" onDrawn={onDrawn} />
      </div>
    );
  }
  const [lo, hi] = window_ ?? (stats ? [stats.min ?? 0, stats.max ?? 1] : slice ? finiteRange(slice.values) : [0, 1]);
  const tunedLabel = layout.dims.filter((d) => d.tuned && d.values).map((d) => `${d.label} ${d.values?.[indices[d.dim]] ?? indices[d.dim]}`).join(', ');

  return (
    <div className="vt" data-testid="image-tools">
      <div className="vt-bar-top">
        <code className="vt-path">{path}</code>
        <span className="desc">{shape.join(' × ')}</span>
        {title && <span className="desc">{title}</span>}
      </div>
      {note && <p className="vt-notice" role="status">{note}</p>}
      <div className="vt-slicers">
        {layout.dims.map((d) => (
          <label key={d.dim} className="vt-slicer">{d.tuned ? `${d.label} (tuned)` : d.label}
            {d.tuned && d.values ? (
              <select aria-label={`Slice: ${d.label}`} value={indices[d.dim]}
                      onChange={(e) => setIndices((ix) => ix.map((v, k) => (k === d.dim ? Number(e.target.value) : v)))}>
                {d.values.map((v, i) => <option key={i} value={i}>{`${d.label} ${v}`}</option>)}
              </select>
            ) : (
              <>
                <input type="range" min={0} max={d.size - 1} value={indices[d.dim]} aria-label={`Slice: ${d.label}`}
                       onChange={(e) => setIndices((ix) => ix.map((v, k) => (k === d.dim ? Number(e.target.value) : v)))} />
                <input type="number" min={0} max={d.size - 1} value={indices[d.dim]} aria-label={`Index: ${d.label}`} className="vt-index"
                       onChange={(e) => { const n = Math.max(0, Math.min(d.size - 1, Number(e.target.value) || 0)); setIndices((ix) => ix.map((v, k) => (k === d.dim ? n : v))); }} />
                <span className="desc">{d.values ? d.values[indices[d.dim]] : ''} of {d.size}</span>
              </>
            )}
          </label>
        ))}
        {tunedLabel && <strong data-testid="slice-label">{tunedLabel}</strong>}
      </div>
      <div className="vt-toolbar" role="toolbar" aria-label="Image tools">
        {(['profile', 'roi', 'zoom'] as Tool[]).map((t) => (
          <button key={t} type="button" aria-pressed={tool === t} onClick={() => setTool(t)}>
            {t === 'profile' ? 'Line profile' : t === 'roi' ? 'ROI box' : 'Zoom box'}</button>
        ))}
        <button type="button" disabled={!region} onClick={() => { setRegion(null); setOverlay({}); setProfile(null); setRoi(null); }}>Reset zoom</button>
        <label><input type="checkbox" checked={fullRes} onChange={(e) => setFullRes(e.target.checked)} /> Full resolution</label>
        <label>Colour map <select value={cmap} aria-label="Colour map" onChange={(e) => setCmap(e.target.value)}>
          {COLORMAPS.filter((c) => c !== 'RdBu').map((c) => <option key={c}>{c}</option>)}
        </select></label>
        {slice && (
          <span className="desc" data-testid="resolution">
            {slice.bin[0] === 1 && slice.bin[1] === 1 ? 'full resolution' : `binned ${slice.bin[0]} × ${slice.bin[1]}`}
            {' · '}{slice.rows} × {slice.cols} shown of rows {slice.region[0]}–{slice.region[1]}, columns {slice.region[2]}–{slice.region[3]}
            {' · '}{(slice.bytes / 1024).toFixed(0)} kB
          </span>
        )}
      </div>
      <div className="vt-images">
        <figure>
          <ImageCanvas slice={slice} min={lo} max={hi} cmap={cmap} size={size} overlay={overlay} label="Image" testId="image"
                       onDrag={onDrag} onDrawn={onDrawn} />
          <figcaption>{compare ? 'A: ' : ''}{path}</figcaption>
        </figure>
        {compare && (
          <>
            <figure>
              <ImageCanvas slice={other} min={lo} max={hi} cmap={cmap} size={size} overlay={overlay} label="Compared image" testId="image-b" />
              <figcaption>B: {compare}</figcaption>
            </figure>
            <figure>
              {difference && 'slice' in difference && difference.slice ? (
                <>
                  <ImageCanvas slice={difference.slice} min={-difference.limit} max={difference.limit} cmap="RdBu" size={size} label="Difference" testId="difference" />
                  <figcaption data-testid="difference-stats">A − B (blue: A larger, red: B larger): largest |difference| {fmt(difference.maxAbs)}, mean |difference| {fmt(difference.meanAbs)}</figcaption>
                </>
              ) : <p className="error">{otherError ?? (difference && 'error' in difference ? difference.error : 'Loading…')}</p>}
            </figure>
          </>
        )}
      </div>
      <div className="vt-panels">
        <section className="vt-card" aria-label="Contrast">
          <h2>Contrast</h2>
          {stats ? <Histogram stats={stats} min={lo} max={hi} /> : <p>Computing the histogram…</p>}
          <div className="vt-row">
            <label>min <input type="number" step="any" value={Number(lo.toPrecision(6))} aria-label="Contrast min"
                              onChange={(e) => setWindow([Number(e.target.value), hi])} /></label>
            <label>max <input type="number" step="any" value={Number(hi.toPrecision(6))} aria-label="Contrast max"
                              onChange={(e) => setWindow([lo, Number(e.target.value)])} /></label>
            <button type="button" disabled={!stats} onClick={() => stats && setWindow([percentile(stats, 0.01) ?? lo, percentile(stats, 0.99) ?? hi])}>1–99 %</button>
            <button type="button" disabled={!stats} onClick={() => stats && setWindow([stats.min ?? lo, stats.max ?? hi])}>Full range</button>
          </div>
          {stats && <p className="desc">Slice: min {fmt(stats.min)}, max {fmt(stats.max)}, mean {fmt(stats.mean)}, {stats.nan_count} NaN</p>}
        </section>
        <section className="vt-card" aria-label="Line profile">
          <h2>Line profile</h2>
          {profile ? <Profile values={profile.values} length={profile.length} /> : <p className="desc">Choose Line profile and drag across the image.</p>}
        </section>
        <section className="vt-card" aria-label="ROI statistics">
          <h2>ROI</h2>
          {roi ? (
            <table className="vt-stats" data-testid="roi-stats"><tbody>
              <tr><th>rows</th><td>{roi.region[0]}–{roi.region[1]}</td><th>columns</th><td>{roi.region[2]}–{roi.region[3]}</td></tr>
              {roi.stats ? (
                <>
                  <tr><th>min</th><td>{fmt(roi.stats.min)}</td><th>max</th><td>{fmt(roi.stats.max)}</td></tr>
                  <tr><th>mean</th><td>{fmt(roi.stats.mean)}</td><th>std</th><td>{fmt(roi.stats.std)}</td></tr>
                  <tr><th>pixels</th><td>{roi.stats.count}</td><th>NaN</th><td>{roi.stats.nan_count}</td></tr>
                </>
              ) : <tr><td colSpan={4}>Computing at full resolution…</td></tr>}
            </tbody></table>
          ) : <p className="desc">Choose ROI box and drag a box on the image: its statistics are computed at full resolution.</p>}
        </section>
        <section className="vt-card" aria-label="Compare">
          <h2>Compare</h2>
          <form onSubmit={(e) => { e.preventDefault(); setCompare(compareDraft.trim()); }} className="vt-row">
            <input type="text" value={compareDraft} onChange={(e) => setCompareDraft(e.target.value)} aria-label="Dataset to compare with"
                   placeholder="/entry/other/data, or output/run/file.nxs::/entry/data" size={40} />
            <button type="submit">Side by side</button>
            {compare && <button type="button" onClick={() => { setCompare(''); setCompareDraft(''); }}>Stop comparing</button>}
          </form>
          <p className="desc">A dataset of the same shape, in this file or another (<code>file::path</code>): shown beside this one, with A − B.</p>
        </section>
      </div>
    </div>
  );
}
