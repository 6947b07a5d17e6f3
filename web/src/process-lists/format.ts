// The list as savu_config's `disp -v` prints it: plain text a scientist can paste into a logbook.
import { Loop, ShownPlugin, valueText } from './client';

const RULE = '-'.repeat(78);

export function dispText(path: string, plugins: ShownPlugin[], loops: Loop[], verbose = true): string {
  const lines = [`Process list ${path}`, RULE];
  for (const p of plugins) {
    const off = (p as ShownPlugin & { active?: boolean }).active === false ? '***OFF*** ' : '';
    const id = (p as ShownPlugin & { id?: string }).id;
    lines.push(` ${off}${p.pos}) ${p.name}${id ? `(${id})` : ''}`);
    if (verbose && p.summary) lines.push(`    ${p.summary}`);
    const width = Math.max(0, ...p.parameters.map((q) => q.name.length));
    for (const q of p.parameters) {
      lines.push(`    ${String(q.number ?? '').padStart(3)}) ${q.name.padStart(width)} : ${valueText(q.value)}`);
      if (verbose && q.description) lines.push(`${' '.repeat(width + 10)}${q.description}`);
    }
    lines.push(RULE);
  }
  if (!plugins.length) lines.push(' The list is empty.', RULE);
  for (const [i, l] of loops.entries()) {
    lines.push(`Loop ${i + 1}: plugins ${l.start} to ${l.end}, ${l.iterations} iterations`);
  }
  return lines.join('\n');
}

/** What a command's answer says, as savu_config would print it. */
export function resultText(result: Record<string, unknown>): string {
  // The answers are JSON of a dozen known shapes (operations.py); read them loosely.
  const r = result as Record<string, any>;
  const out: string[] = [];
  if (Array.isArray(r.plugins) && r.level) {
    out.push(dispText('', r.plugins as ShownPlugin[], [], true).split('\n').slice(1).join('\n'));
  } else if (Array.isArray(r.plugins) && r.framework) {
    for (const p of r.plugins) {
      out.push(`${p.pos}) ${p.name}`);
      for (const c of p.citations ?? []) out.push(`    ${c.description || c.doi || c.name}${c.doi ? ` (doi ${c.doi})` : ''}`);
    }
    for (const c of r.framework) out.push(`Framework: ${c.description || c.name}${c.doi ? ` (doi ${c.doi})` : ''}`);
  } else if (Array.isArray(r.plugins)) {
    for (const p of r.plugins) out.push(`${String(p.name).padEnd(36)} ${p.category ?? ''} · ${p.summary ?? ''}`);
  }
  if (r.collections && typeof r.collections === 'object') {
    for (const [name, members] of Object.entries(r.collections as Record<string, string[]>)) out.push(`${name}: ${members.join(', ')}`);
  }
  if (Array.isArray(r.loops)) {
    out.push(r.loops.length ? r.loops.map((l: Loop, i: number) => `Loop ${i + 1}: plugins ${l.start} to ${l.end}, ${l.iterations} iterations`).join('\n') : 'No loops.');
  }
  if (r.param === 'preview' && Array.isArray(r.dimensions)) {
    out.push(`Preview of plugin ${r.pos}: ${valueText(r.preview)}`);
    for (const d of r.dimensions) out.push(`  dim${d.dim}: start ${d.start ?? ''}  stop ${d.stop ?? ''}  step ${d.step ?? ''}  chunk ${d.chunk ?? ''}`);
  } else if (r.param && Array.isArray(r.values)) {
    out.push(r.tuned ? `${r.pos}.${r.param} is tuned over ${r.values.length} values: ${r.values.map(valueText).join(', ')}` : `${r.pos}.${r.param} = ${valueText(r.values[0])} (not tuned)`);
  } else if (r.param && 'value' in r) {
    out.push(`${r.pos}.${r.param} = ${valueText(r.value)}`);
  } else if (r.param && Array.isArray(r.changed)) {
    out.push(`${r.param} changed in plugins ${r.changed.join(', ')}`);
  }
  if (Array.isArray(r.removed)) out.push(`Removed ${r.removed.join(', ')}.`);
  if (r.replaced) out.push(`Plugin ${r.pos}: ${r.replaced} replaced by ${r.name}.`);
  else if (r.name && r.pos && !r.param && !Array.isArray(r.plugins)) out.push(`${r.name} is at position ${r.pos}.`);
  if (Array.isArray(r.switched)) out.push(`Switched plugin(s) ${r.switched.join(', ')} ${String(r.state).toUpperCase()}.`);
  if (Array.isArray(r.refreshed)) out.push(`Refreshed ${r.refreshed.join(', ') || 'nothing'}.`);
  if (typeof r.level === 'string' && !Array.isArray(r.plugins)) out.push(`Level: ${r.level}`);
  if (Array.isArray(r.notes)) out.push(...r.notes);
  return out.join('\n');
}
