// The small plots of the image tools: the histogram of the contrast editor, and a line profile.
import type { Stats } from './sliceProvider';

const W = 360;
const H = 120;

export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
}

/** The values of the slice as bars (log counts), with the contrast window shaded. */
export function Histogram({ stats, min, max }: { stats: Stats; min: number; max: number }) {
  const h = stats.histogram;
  if (!h || !h.counts.length) return <p className="desc">No histogram: the slice has no finite values.</p>;
  const lo = h.edges[0];
  const hi = h.edges[h.edges.length - 1];
  const x = (v: number) => (hi > lo ? ((v - lo) / (hi - lo)) * W : 0);
  const top = Math.log1p(Math.max(...h.counts));
  const bw = W / h.counts.length;
  return (
    <svg className="vt-plot" width={W} height={H + 16} viewBox={`0 0 ${W} ${H + 16}`} data-testid="histogram" role="img"
         aria-label={`Histogram of ${stats.count} values from ${fmt(lo)} to ${fmt(hi)}`}>
      <rect x={Math.max(0, x(min))} y={0} width={Math.max(0, Math.min(W, x(max)) - Math.max(0, x(min)))} height={H} className="vt-window" />
      {h.counts.map((c, i) => {
        const bar = top > 0 ? (Math.log1p(c) / top) * H : 0;
        return <rect key={i} className="vt-bar" x={i * bw} y={H - bar} width={Math.max(1, bw - 0.5)} height={bar} />;
      })}
      <text x={0} y={H + 13} className="vt-tick">{fmt(lo)}</text>
      <text x={W} y={H + 13} textAnchor="end" className="vt-tick">{fmt(hi)}</text>
    </svg>
  );
}

/** Values along a line, plotted against the distance along it in pixels. */
export function Profile({ values, length }: { values: number[]; length: number }) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return <p className="desc">The line crosses no finite values.</p>;
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const y = (v: number) => (hi > lo ? H - ((v - lo) / (hi - lo)) * H : H / 2);
  const points = values.map((v, i) => (Number.isFinite(v) ? `${(i / Math.max(1, values.length - 1)) * W},${y(v)}` : '')).filter(Boolean).join(' ');
  return (
    <svg className="vt-plot" width={W} height={H + 16} viewBox={`0 0 ${W} ${H + 16}`} data-testid="profile" role="img"
         aria-label={`Line profile over ${values.length} points, ${fmt(lo)} to ${fmt(hi)}`}>
      <polyline points={points} className="vt-line" />
      <text x={0} y={12} className="vt-tick">{fmt(hi)}</text>
      <text x={0} y={H} className="vt-tick">{fmt(lo)}</text>
      <text x={W} y={H + 13} textAnchor="end" className="vt-tick">{Math.round(length)} px</text>
    </svg>
  );
}
