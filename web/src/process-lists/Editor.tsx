// The process-list editor: savu_config's commands as buttons and fields. Every change is one request of
// savu_config operations carrying the ETag last seen; the server answers with the whole list again.
import { FormEvent, useCallback, useEffect, useState } from 'react';
import { ApiError } from '../api';
import { href } from '../route';
import {
  applyOperations, copyList, deleteList, display, downloadUrl, getList, Operation, Problem, ProcessListDoc,
  searchPlugins, ShownPlugin, uploadList, valueText,
} from './client';
import './editor.css';

const LEVELS = ['basic', 'intermediate', 'advanced'];

export default function Editor({ path, onDeleted }: { path: string; onDeleted: () => void }) {
  const [doc, setDoc] = useState<ProcessListDoc | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [level, setLevel] = useState('basic');
  const [shown, setShown] = useState<ShownPlugin | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const reload = useCallback(() => {
    getList(path).then((d) => { setDoc(d); setError(null); }, (e: Error) => setError(e.message));
  }, [path]);
  useEffect(() => { setSelected(null); reload(); }, [reload]);

  useEffect(() => {
    if (!doc || !selected || !doc.plugins.some((p) => p.pos === selected)) { setShown(null); return; }
    display(path, level, selected).then((d) => setShown(d.plugins[0] ?? null), (e: Error) => setError(e.message));
  }, [doc, selected, level, path]);

  const run = async (operations: Operation[], done?: string) => {
    if (!doc) return;
    try {
      const next = await applyOperations(path, doc.etag, operations);
      setDoc(next);
      setError(null);
      const notes = (next.results ?? []).flatMap((r) => (r.notes as string[] | undefined) ?? []);
      setNotice([done, ...notes].filter(Boolean).join(' ') || null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setError('This list was changed elsewhere since you opened it; it has been reloaded. Please redo your change.');
        reload();
      } else {
        setError((e as Error).message);
      }
    }
  };

  if (!doc) return error ? <p className="error" role="alert">{error}</p> : <p>Loading…</p>;
  const count = doc.plugins.length;

  return (
    <div className="pl-main">
      <div className="pl-toolbar">
        <span className="path">{doc.path}</span>
        <span>Savu {doc.version ?? '(no version)'} file</span>
        <a className="pl-download" href={downloadUrl(path)} download={path.split('/').pop()}>Download .nxs</a>
        <label>Upload .nxs <input type="file" accept=".nxs" aria-label="Upload a process list file" onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) uploadList(path, file, doc.etag).then((d) => { setDoc(d); setNotice(`${file.name} uploaded.`); }, (err: Error) => setError(err.message));
        }} /></label>
        <button type="button" onClick={() => {
          const name = window.prompt('Save a copy as (path in processing):', doc.path.replace(/\.nxs$/, '_copy.nxs'));
          if (name) copyList(name, path).then((d) => { window.location.hash = href('process-lists', { path: d.path }); }, (e: Error) => setError(e.message));
        }}>Save as…</button>
        <button type="button" onClick={() => {
          if (window.confirm(`Delete ${doc.path}?`)) deleteList(path, doc.etag).then(onDeleted, (e: Error) => setError(e.message));
        }}>Delete</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="pl-notice" role="status">{notice}</p>}

      <div className="pl-card">
        <h2>Plugins</h2>
        <table className="pl-plugins">
          <thead><tr><th>Pos</th><th>Plugin</th><th>Kind</th><th>On</th><th /></tr></thead>
          <tbody>
            {doc.plugins.map((p, i) => (
              <tr key={`${p.pos}-${p.name}`} className={`${p.pos === selected ? 'selected' : ''} ${p.active ? '' : 'off'}`}>
                <td className="pos">{p.pos}</td>
                <td>
                  <a href="#" onClick={(e) => { e.preventDefault(); setSelected(p.pos); }}>{p.name}</a>
                  {p.needs_gpu && <span className="badge">GPU</span>}
                  {!p.known && <span className="pl-unknown" title="Not in this Savu's catalogue: kept as it is">unknown</span>}
                </td>
                <td>{p.kind ?? ''}</td>
                <td><input type="checkbox" checked={p.active} aria-label={`Plugin ${p.pos} on`}
                           onChange={() => void run([{ op: 'set', pos: p.pos, state: p.active ? 'off' : 'on' }])} /></td>
                <td className="actions">
                  <button type="button" disabled={i === 0} title="Move up"
                          onClick={() => void run([{ op: 'move', pos: p.pos, new_pos: String(i) }])}>↑</button>
                  <button type="button" disabled={i === count - 1} title="Move down"
                          onClick={() => void run([{ op: 'move', pos: p.pos, new_pos: String(i + 2) }])}>↓</button>
                  <button type="button" title="Duplicate" onClick={() => void run([{ op: 'dupl', pos: p.pos, new_pos: String(i + 2) }])}>dupl</button>
                  <button type="button" title="Refresh to current definitions" disabled={!p.known}
                          onClick={() => void run([{ op: 'ref', pos: [p.pos] }])}>ref</button>
                  <button type="button" title="Remove" onClick={() => void run([{ op: 'rem', pos: p.pos }])}>rem</button>
                </td>
              </tr>
            ))}
            {!count && <tr><td colSpan={5} className="empty">The list is empty: add a loader first.</td></tr>}
          </tbody>
        </table>
        <AddPlugin count={count} onAdd={(name, pos) => run([{ op: 'add', name, ...(pos ? { pos } : {}) }], `${name} added.`)} />
      </div>

      {shown && (
        <div className="pl-card">
          <h2>{shown.pos}: {shown.name}</h2>
          {shown.summary && <p className="desc">{shown.summary}</p>}
          <label>Level <select value={level} onChange={(e) => setLevel(e.target.value)} aria-label="Parameter level">
            {LEVELS.map((l) => <option key={l}>{l}</option>)}
          </select></label>
          <ParameterTable plugin={shown} problems={doc.problems.filter((p) => p.pos === shown.pos && p.parameter)}
                          onChange={(param, text) => run([{ op: 'mod', pos: shown.pos, param, text }])}
                          onDefault={(param) => run([{ op: 'mod', pos: shown.pos, param, default: true }])} />
        </div>
      )}

      <div className="pl-card">
        <h2>Loops</h2>
        <ul>
          {doc.loops.map((l, i) => (
            <li key={i}>Plugins {l.start} to {l.end}, {l.iterations} times
              <button type="button" onClick={() => void run([{ op: 'iterate', remove: [i + 1] }])}>remove</button></li>
          ))}
          {!doc.loops.length && <li className="empty">No loops.</li>}
        </ul>
        <LoopForm onSet={(start, end, iterations) => run([{ op: 'iterate', set: { start, end, iterations } }])} />
      </div>

      {doc.problems.length > 0 && (
        <div className="pl-card pl-problems">
          <h2>Before this list can run</h2>
          <ul>{doc.problems.map((p, i) => <li key={i}>{p.message}</li>)}</ul>
        </div>
      )}
    </div>
  );
}

function tuningHint(value: unknown): string | null {
  if (typeof value !== 'string' || !value.includes(';')) return null;
  const pieces = value.split(';').filter((p) => p.trim());
  if (pieces[0]?.includes(':')) return `tuned over the range ${pieces[0]} (stop excluded)`;
  return `tuned: ${pieces.length} values, one run each`;
}

function ParameterTable({ plugin, problems, onChange, onDefault }: {
  plugin: ShownPlugin; problems: Problem[]; onChange: (param: string, text: string) => void;
  onDefault: (param: string) => void;
}) {
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  useEffect(() => setDrafts({}), [plugin]);
  if (!plugin.known) return <p>This plugin is not in the catalogue; its parameters are kept exactly as they were read.</p>;
  return (
    <table className="pl-params">
      <thead><tr><th>#</th><th>Parameter</th><th>Value</th><th /></tr></thead>
      <tbody>
        {plugin.parameters.map((p) => {
          const text = drafts[p.name] ?? valueText(p.value);
          const changed = drafts[p.name] !== undefined && drafts[p.name] !== valueText(p.value);
          return (
            <tr key={p.name}>
              <td>{p.number}</td>
              <td className="name" title={`${p.dtype ?? ''} · ${p.visibility}`}>{p.name}
                {p.description && <div className="desc">{p.description}</div>}</td>
              <td>
                <input type="text" value={text} aria-label={`${plugin.name} ${p.name}`}
                       list={p.options ? `options-${p.name}` : undefined}
                       onChange={(e) => setDrafts({ ...drafts, [p.name]: e.target.value })}
                       onKeyDown={(e) => { if (e.key === 'Enter' && changed) onChange(p.name, text); }} />
                {tuningHint(p.value) && <div className="desc">{tuningHint(p.value)}</div>}
                {problems.filter((q) => q.parameter === p.name).map((q, i) => <div key={i} className="error">{q.message}</div>)}
                {p.options && <datalist id={`options-${p.name}`}>{p.options.map((o) => <option key={String(o)} value={valueText(o)} />)}</datalist>}
              </td>
              <td>
                <button type="button" disabled={!changed} onClick={() => onChange(p.name, text)}>Set</button>
                <button type="button" title={`Default: ${valueText(p.default)}`} onClick={() => onDefault(p.name)}>Default</button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function AddPlugin({ count, onAdd }: { count: number; onAdd: (name: string, pos: string) => void }) {
  const [query, setQuery] = useState('');
  const [pos, setPos] = useState('');
  const [found, setFound] = useState<{ name: string; kind: string; needs_gpu: boolean; summary: string }[]>([]);
  useEffect(() => {
    if (!query.trim()) { setFound([]); return; }
    const timer = window.setTimeout(() => {
      searchPlugins(query).then((r) => setFound(r.plugins.slice(0, 12)), () => setFound([]));
    }, 200);
    return () => window.clearTimeout(timer);
  }, [query]);
  return (
    <div className="pl-add">
      <input type="search" placeholder="Add a plugin: search by name or category" value={query} aria-label="Search plugins to add"
             onChange={(e) => setQuery(e.target.value)} />
      <label>at position <input type="text" size={4} value={pos} placeholder={String(count + 1)} aria-label="Position for the new plugin"
                                onChange={(e) => setPos(e.target.value.trim())} /></label>
      <ul>
        {found.map((p) => (
          <li key={p.name}>
            <button type="button" onClick={() => onAdd(p.name, pos)}>Add</button>
            <strong>{p.name}</strong>{p.needs_gpu && <span className="badge">GPU</span>}
            <span className="desc">{p.kind} · {p.summary}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function LoopForm({ onSet }: { onSet: (start: number, end: number, iterations: number) => void }) {
  const [start, setStart] = useState('');
  const [end, setEnd] = useState('');
  const [iterations, setIterations] = useState('2');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onSet(Number(start), Number(end), Number(iterations));
  };
  return (
    <form onSubmit={submit} className="pl-add">
      Repeat plugins <input type="number" min={1} value={start} onChange={(e) => setStart(e.target.value)} aria-label="Loop start" required />
      to <input type="number" min={1} value={end} onChange={(e) => setEnd(e.target.value)} aria-label="Loop end" required />
      <input type="number" min={1} value={iterations} onChange={(e) => setIterations(e.target.value)} aria-label="Loop iterations" required /> times
      <button type="submit">Set loop</button>
    </form>
  );
}
