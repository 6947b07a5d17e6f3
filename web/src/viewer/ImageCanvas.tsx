// One slice drawn on a canvas with a colour map and contrast window, and the mouse turned into data
// coordinates: a drag gives the tool a box or a line in full-resolution pixels of the dataset.
import { useEffect, useRef } from 'react';
import { paint } from './colormaps';
import type { Slice } from './sliceProvider';

export type Point = [number, number]; // (row, col) in full-resolution pixels
export interface Overlay { line?: [Point, Point]; box?: [Point, Point] }

interface Props {
  slice: Slice | null;
  min: number;
  max: number;
  cmap: string;
  size: number;
  overlay?: Overlay;
  label: string;
  testId?: string;
  onDrag?: (from: Point, to: Point, done: boolean) => void;
  onDrawn?: () => void;
}

function fit(slice: Slice, width: number, height: number) {
  const scale = Math.min(width / slice.cols, height / slice.rows);
  return { scale, ox: (width - slice.cols * scale) / 2, oy: (height - slice.rows * scale) / 2 };
}

export default function ImageCanvas({ slice, min, max, cmap, size, overlay, label, testId, onDrag, onDrawn }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const start = useRef<Point | null>(null);
  const ratio = window.devicePixelRatio || 1;
  const pixels = Math.round(size * ratio);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const context = c.getContext('2d');
    if (!context) return;
    context.clearRect(0, 0, c.width, c.height);
    if (!slice) return;
    const image = paint(slice.values, slice.rows, slice.cols, min, max, cmap);
    const off = document.createElement('canvas');
    off.width = slice.cols;
    off.height = slice.rows;
    off.getContext('2d')?.putImageData(image, 0, 0);
    const { scale, ox, oy } = fit(slice, c.width, c.height);
    context.imageSmoothingEnabled = false;
    context.drawImage(off, ox, oy, slice.cols * scale, slice.rows * scale);
    const toCanvas = ([row, col]: Point): [number, number] => [
      ox + ((col - slice.region[2]) / slice.bin[1]) * scale, oy + ((row - slice.region[0]) / slice.bin[0]) * scale];
    context.lineWidth = 2 * ratio;
    if (overlay?.line) {
      const [a, b] = overlay.line.map(toCanvas);
      context.strokeStyle = '#ff3b30';
      context.beginPath(); context.moveTo(a[0], a[1]); context.lineTo(b[0], b[1]); context.stroke();
    }
    if (overlay?.box) {
      const [a, b] = overlay.box.map(toCanvas);
      context.strokeStyle = '#00e5ff';
      context.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
    }
    onDrawn?.();
  }, [slice, min, max, cmap, overlay, pixels, ratio, onDrawn]);

  const toData = (event: React.PointerEvent<HTMLCanvasElement>): Point | null => {
    const c = canvas.current;
    if (!c || !slice) return null;
    const rect = c.getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * c.width;
    const py = ((event.clientY - rect.top) / rect.height) * c.height;
    const { scale, ox, oy } = fit(slice, c.width, c.height);
    const ax = Math.max(0, Math.min(slice.cols, (px - ox) / scale));
    const ay = Math.max(0, Math.min(slice.rows, (py - oy) / scale));
    return [slice.region[0] + ay * slice.bin[0], slice.region[2] + ax * slice.bin[1]];
  };

  return (
    <canvas ref={canvas} width={pixels} height={pixels} style={{ width: size, height: size }} className="vt-canvas"
            aria-label={label} data-testid={testId} data-bin={slice ? slice.bin.join(',') : undefined}
            onPointerDown={(e) => { start.current = toData(e); (e.target as HTMLCanvasElement).setPointerCapture(e.pointerId); }}
            onPointerMove={(e) => { const p = toData(e); if (start.current && p) onDrag?.(start.current, p, false); }}
            onPointerUp={(e) => { const p = toData(e); if (start.current && p) onDrag?.(start.current, p, true); start.current = null; }} />
  );
}
