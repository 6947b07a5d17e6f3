// The process-list editor: savu_config's commands as buttons and fields, and as a command line beside
// them. Every change is one request carrying the ETag last seen; the server answers with the whole list
// again and keeps the version it replaced, so undo, redo and history survive a reload.
// Nothing the scientist did is dropped silently: a change refused because the list changed elsewhere
// (412) is kept and offered again on the new version, typed values wait per plugin until set, and
// removing a plugin or uploading over the list asks first.
import { FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api';
import { href } from '../route';
import {
  applyOperations, copyList, deleteList, display, downloadUrl, getHistory, getList, History, Loop, Operation,
  Problem, ProcessListDoc, redo, runCommand, searchPlugins, ShownPlugin, undo, uploadList, valueText,
} from './client';
import CommandLine, { LineOutcome } from './CommandLine';
import PluginDetails from './PluginDetails';
import WholeList from './WholeList';
import { resultText } from './format';
import './editor.css';

const LEVELS = ['basic', 'intermediate', 'advanced'];

/** A change the server refused because the list changed meanwhile: what it was, and how to redo it. */
interface Conflict {
  what: string;
  retry: (etag: string) => Promise<ProcessListDoc>;
}

function hashParams(): URLSearchParams {
  return new URLSearchParams(window.location.hash.split('?')[1] ?? '');
}

/** Keep the selected plugin in the address, so a reload comes back to it. */
function rememberPlugin(pos: string | null) {
  const params = Object.fromEntries(hashParams());
  if (pos) params.plugin = pos; else delete params.plugin;
  window.history.replaceState(null, '', href('process-lists', params));
}

export function opText(op: Operation): string {
  const many = (v: unknown) => (Array.isArray(v) ? v.join(' ') : String(v ?? ''));
  switch (op.op) {
    case 'add': return `add ${op.name}${op.pos ? ` ${op.pos}` : ''}`;
    case 'rem': return `rem ${many(op.pos)}`;
    case 'set': return `set ${many(op.pos)} ${op.state}`;
    case 'move': case 'dupl': return `${op.op} ${op.pos}${op.new_pos ? ` ${op.new_pos}` : ''}`;
    case 'mod': return op.default ? `mod -d ${op.pos}.${op.param}` : `mod ${op.pos}.${op.param} ${op.text ?? valueText(op.value)}`;
    case 'ref': return `ref ${many(op.pos)}`;
    case 'iterate': {
      const loop = op.set as Loop | undefined;
      return loop ? `iterate --set ${loop.start} ${loop.end} ${loop.iterations}` : `iterate --remove ${many(op.remove)}`;
    }
    default: return op.op;
  }
}

export default function Editor({ path, onDeleted }: { path: string; onDeleted: () => void }) {
  const [doc, setDoc] = useState<ProcessListDoc | null>(null);
  const [selected, setSelectedState] = useState<string | null>(() => hashParams().get('plugin'));
  const [level, setLevel] = useState('basic');
  const [shown, setShown] = useState<ShownPlugin | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [history, setHistory] = useState<History | null>(null);
  const [showHistory, setShowHistory] = useState(false);
  // Typed but not yet set, per plugin and parameter: switching plugins keeps them.
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const upload = useRef<HTMLInputElement>(null);

  const setSelected = (pos: string | null) => { setSelectedState(pos); rememberPlugin(pos); };
  const say = (text: string | null) => { setNotice(text); setError(null); };
  const fail = (text: string) => { setError(text); setNotice(null); };

  const reload = useCallback(() => getList(path).then((d) => { setDoc(d); return d; }), [path]);
  const refreshHistory = useCallback(() => { getHistory(path).then(setHistory, () => setHistory(null)); }, [path]);
  useEffect(() => {
    setDoc(null); setConflict(null); setError(null); setNotice(null); setDrafts({});
    reload().catch((e: Error) => setError(e.message));
    refreshHistory();
  }, [reload, refreshHistory]);

  useEffect(() => {
    if (!doc || !selected || !doc.plugins.some((p) => p.pos === selected)) { setShown(null); return; }
    display(path, level, selected).then((d) => setShown(d.plugins[0] ?? null), (e: Error) => setError(e.message));
  }, [doc, selected, level, path]);

  /** Send a change; on 412 keep it and offer it again on the list as it is now. */
  const change = async (what: string, send: (etag: string) => Promise<ProcessListDoc>, done?: string): Promise<ProcessListDoc | null> => {
    if (!doc) return null;
    try {
      const next = await send(doc.etag);
      setDoc(next);
      setConflict(null);
      const notes = (next.results ?? []).flatMap((r) => (r.notes as string[] | undefined) ?? []);
      say([done, ...notes].filter(Boolean).join(' ') || null);
      refreshHistory();
      return next;
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setConflict({ what, retry: send });
        setError(null);
        reload().catch(() => undefined);
      } else {
        fail((e as Error).message);
      }
      return null;
    }
  };
  const run = (operations: Operation[], done?: string) =>
    change(operations.map(opText).join('; '), (etag) => applyOperations(path, etag, operations), done);

  const applyAgain = async () => {
    if (!conflict) return;
    const fresh = await reload();
    try {
      const next = await conflict.retry(fresh.etag);
      setDoc(next);
      setConflict(null);
      say(`Your change (${conflict.what}) was applied to the new version.`);
      refreshHistory();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 412)) { setConflict(null); fail((e as Error).message); }
    }
  };

  /** A typed line: its answer (or why not) goes to the command line's transcript. */
  const command = async (line: string): Promise<LineOutcome> => {
    if (!doc) return { error: 'The list is still loading.' };
    const send = (etag: string) => runCommand(path, etag, line, level);
    try {
      const next = await send(doc.etag);
      setDoc(next);
      setConflict(null);
      setError(null);
      if (next.etag !== doc.etag) refreshHistory();
      return { answer: next };
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setConflict({ what: line, retry: send });
        reload().catch(() => undefined);
        return { error: 'The list was changed elsewhere: your command waits above, to be applied to the new version.' };
      }
      return { error: (e as Error).message };
    }
  };

  const step = (direction: 'undo' | 'redo') =>
    change(direction, (etag) => (direction === 'undo' ? undo : redo)(path, etag));

  if (!doc) return error ? <p className="error" role="alert">{error}</p> : <p>Loading…</p>;
  const count = doc.plugins.length;
  const loopOf = (place: number) => doc.loops.findIndex((l) => l.start <= place && place <= l.end);

  return (
    <div className="pl-main">
      <div className="pl-toolbar">
        <span className="path">{doc.path}</span>
        <span>Savu {doc.version ?? '(no version)'} file</span>
        <button type="button" disabled={!history?.can_undo} onClick={() => void step('undo')} title="Undo the last change (also after a reload)">Undo</button>
        <button type="button" disabled={!history?.can_redo} onClick={() => void step('redo')} title="Redo">Redo</button>
        <button type="button" aria-pressed={showHistory} onClick={() => setShowHistory(!showHistory)}>History</button>
        <a className="pl-run" href={href('jobs', { list: `processing/${doc.path}` })}>Run this list…</a>
        <a className="pl-download" href={downloadUrl(path)} download={path.split('/').pop()}>Download .nxs</a>
        <label>Upload .nxs <input ref={upload} type="file" accept=".nxs" aria-label="Upload a process list file" onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (!file) return;
          if (count && !window.confirm(`Replace ${doc.path} (${count} plugins) with ${file.name}? Undo brings the current list back.`)) return;
          void change(`upload ${file.name}`, (etag) => uploadList(path, file, etag), `${file.name} uploaded; Undo brings the previous list back.`);
        }} /></label>
        <button type="button" onClick={() => {
          const name = window.prompt('Save a copy as (path in processing):', doc.path.replace(/\.nxs$/, '_copy.nxs'));
          if (name) copyList(name, path).then((d) => { window.location.hash = href('process-lists', { path: d.path }); }, (e: Error) => fail(e.message));
        }}>Save as…</button>
        <button type="button" onClick={() => {
          if (window.confirm(`Delete ${doc.path}? This cannot be undone.`)) deleteList(path, doc.etag).then(onDeleted, (e: Error) => fail(e.message));
        }}>Delete</button>
      </div>
      {conflict && (
        <div className="pl-conflict" role="alert" data-testid="conflict">
          <p>This list was changed elsewhere (another tab, or someone else) after you opened it, so your change
            — <code>{conflict.what}</code> — has not been made yet. The list below is the new version.</p>
          <button type="button" onClick={() => void applyAgain()}>Apply my change to the new version</button>
          <button type="button" onClick={() => setConflict(null)}>Drop my change</button>
        </div>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="pl-notice" role="status">{notice}</p>}
      {showHistory && history && (
        <div className="pl-card" data-testid="history">
          <h2>History</h2>
          <ol className="pl-history">
            {history.entries.map((h) => (
              <li key={h.number} className={h.current ? 'current' : ''}><code>{h.command}</code>
                {h.time && <span className="desc"> {new Date(h.time * 1000).toLocaleString()}</span>}{h.current && ' ← now'}</li>
            ))}
          </ol>
        </div>
      )}

      <div className="pl-card">
        <h2>Plugins</h2>
        <table className="pl-plugins">
          <thead><tr><th>Pos</th><th>Plugin</th><th>Kind</th><th>Loop</th><th>On</th><th /></tr></thead>
          <tbody>
            {doc.plugins.map((p, i) => {
              const loop = loopOf(i + 1);
              const l = loop >= 0 ? doc.loops[loop] : null;
              return (
                <tr key={`${p.pos}-${p.name}`} className={`${p.pos === selected ? 'selected' : ''} ${p.active ? '' : 'off'} ${l ? 'in-loop' : ''}`}>
                  <td className="pos">{p.pos}</td>
                  <td>
                    <a href="#" onClick={(e) => { e.preventDefault(); setSelected(p.pos); }}>{p.name}</a>
                    {p.needs_gpu && <span className="badge">GPU</span>}
                    {!p.known && <span className="pl-unknown" title="Not in this Savu's catalogue: kept as it is">unknown</span>}
                  </td>
                  <td>{p.kind ?? ''}</td>
                  <td className="loop" data-testid={l ? 'loop-mark' : undefined}>
                    {l && (l.start === i + 1 ? <span className="pl-loop">⟳ loop {loop + 1}: ×{l.iterations}</span> : <span className="pl-loop-cont">│</span>)}
                  </td>
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
                    <button type="button" title="Remove" onClick={() => {
                      if (window.confirm(`Remove plugin ${p.pos} (${p.name})? Undo brings it back.`)) {
                        void run([{ op: 'rem', pos: p.pos }], `${p.name} removed; Undo brings it back.`);
                        if (selected === p.pos) setSelected(null);
                      }
                    }}>rem</button>
                  </td>
                </tr>
              );
            })}
            {!count && <tr><td colSpan={6} className="empty">The list is empty: add a loader first.</td></tr>}
          </tbody>
        </table>
        <AddPlugin count={count} onAdd={(name, pos) => run([{ op: 'add', name, ...(pos ? { pos } : {}) }], `${name} added.`)} />
      </div>

      <CommandLine
        onLine={command}
        onAnswer={(answer) => {
          const levelResult = (answer.results ?? []).find((r) => typeof r.level === 'string' && !('plugins' in r));
          if (levelResult) setLevel(String(levelResult.level));
        }}
      />

      {shown && (
        <div className="pl-card">
          <h2>{shown.pos}: {shown.name}</h2>
          {shown.summary && <p className="desc">{shown.summary}</p>}
          <label>Level <select value={level} onChange={(e) => setLevel(e.target.value)} aria-label="Parameter level">
            {LEVELS.map((l) => <option key={l}>{l}</option>)}
          </select></label>
          <ParameterTable plugin={shown} problems={doc.problems.filter((p) => p.pos === shown.pos && p.parameter)}
                          drafts={drafts} setDrafts={setDrafts} path={path} etag={doc.etag}
                          onChange={async (param, text) => {
                            const next = await run([{ op: 'mod', pos: shown.pos, param, text }]);
                            if (next) setDrafts((d) => { const c = { ...d }; delete c[`${shown.pos}:${shown.name}:${param}`]; return c; });
                          }}
                          onDefault={(param) => void run([{ op: 'mod', pos: shown.pos, param, default: true }])} />
        </div>
      )}

      <div className="pl-card">
        <h2>Loops</h2>
        <ul>
          {doc.loops.map((l, i) => (
            <li key={i}>Loop {i + 1}: plugins {l.start} to {l.end}, {l.iterations} times
              <button type="button" onClick={() => void run([{ op: 'iterate', remove: [i + 1] }])}>remove</button></li>
          ))}
          {!doc.loops.length && <li className="empty">No loops.</li>}
        </ul>
        <LoopForm onSet={(start, end, iterations) => void run([{ op: 'iterate', set: { start, end, iterations } }])} />
      </div>

      <WholeList path={path} doc={doc} level={level} />

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

function ParameterTable({ plugin, problems, drafts, setDrafts, path, etag, onChange, onDefault }: {
  plugin: ShownPlugin; problems: Problem[]; drafts: Record<string, string>;
  setDrafts: (update: (d: Record<string, string>) => Record<string, string>) => void; path: string; etag: string;
  onChange: (param: string, text: string) => void; onDefault: (param: string) => void;
}) {
  const [expanded, setExpanded] = useState<Record<string, string>>({});
  useEffect(() => setExpanded({}), [plugin]);
  if (!plugin.known) return <p>This plugin is not in the catalogue; its parameters are kept exactly as they were read.</p>;
  const key = (param: string) => `${plugin.pos}:${plugin.name}:${param}`;
  const expand = (param: string) => {
    const op: Operation = param === 'preview' ? { op: 'expand', pos: plugin.pos } : { op: 'expand', pos: plugin.pos, param };
    applyOperations(path, etag, [op]).then(
      (d) => setExpanded((e) => ({ ...e, [param]: resultText((d.results ?? [])[0] ?? {}) })),
      (err: Error) => setExpanded((e) => ({ ...e, [param]: err.message })));
  };
  return (
    <table className="pl-params">
      <thead><tr><th>#</th><th>Parameter</th><th>Value</th><th /></tr></thead>
      <tbody>
        {plugin.parameters.map((p) => {
          const draft = drafts[key(p.name)];
          const text = draft ?? valueText(p.value);
          const changed = draft !== undefined && draft !== valueText(p.value);
          const tuned = tuningHint(p.value);
          return (
            <tr key={p.name} className={changed ? 'draft' : ''}>
              <td>{p.number}</td>
              <td className="name" title={`${p.dtype ?? ''} · ${p.visibility}`}>{p.name}
                {p.description && <div className="desc">{p.description}</div>}</td>
              <td>
                <input type="text" value={text} aria-label={`${plugin.name} ${p.name}`}
                       list={p.options ? `options-${p.name}` : undefined}
                       onChange={(e) => { const v = e.target.value; setDrafts((d) => ({ ...d, [key(p.name)]: v })); }}
                       onKeyDown={(e) => { if (e.key === 'Enter' && changed) onChange(p.name, text); }} />
                {changed && <div className="desc pl-unsaved">not set yet: press Enter or Set</div>}
                {tuned && <div className="desc">{tuned}</div>}
                {expanded[p.name] && <pre className="pl-expanded" data-testid={`expanded-${p.name}`}>{expanded[p.name]}</pre>}
                {problems.filter((q) => q.parameter === p.name).map((q, i) => <div key={i} className="error">{q.message}</div>)}
                {p.options && <datalist id={`options-${p.name}`}>{p.options.map((o) => <option key={String(o)} value={valueText(o)} />)}</datalist>}
              </td>
              <td>
                <button type="button" disabled={!changed} onClick={() => onChange(p.name, text)}>Set</button>
                <button type="button" title={`Default: ${valueText(p.default)}`} onClick={() => onDefault(p.name)}>Default</button>
                {(tuned || p.name === 'preview') && <button type="button" onClick={() => expand(p.name)}
                  title={p.name === 'preview' ? 'The preview per dimension' : 'Every value this tuning runs'}>expand</button>}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function AddPlugin({ count, onAdd }: { count: number; onAdd: (name: string, pos: string) => Promise<ProcessListDoc | null> }) {
  const [query, setQuery] = useState('');
  const [pos, setPos] = useState('');
  const [about, setAbout] = useState<string | null>(null);
  const [found, setFound] = useState<{ name: string; kind: string; needs_gpu: boolean; summary: string }[]>([]);
  useEffect(() => {
    if (!query.trim()) { setFound([]); return; }
    const timer = window.setTimeout(() => {
      searchPlugins(query).then((r) => setFound(r.plugins.slice(0, 12)), () => setFound([]));
    }, 200);
    return () => window.clearTimeout(timer);
  }, [query]);
  const add = (name: string) => onAdd(name, pos).then((next) => { if (next) { setPos(''); setAbout(null); } });
  return (
    <div className="pl-add">
      <input type="search" placeholder="Add a plugin: search by name or category" value={query} aria-label="Search plugins to add"
             onChange={(e) => setQuery(e.target.value)} />
      <label>at position <input type="text" size={4} value={pos} placeholder={String(count + 1)} aria-label="Position for the new plugin"
                                onChange={(e) => setPos(e.target.value.trim())} /></label>
      <ul>
        {found.map((p) => (
          <li key={p.name}>
            <button type="button" onClick={() => void add(p.name)}>Add</button>
            <button type="button" className="pl-link" aria-expanded={about === p.name} onClick={() => setAbout(about === p.name ? null : p.name)}>
              <strong>{p.name}</strong></button>{p.needs_gpu && <span className="badge">GPU</span>}
            <span className="desc">{p.kind} · {p.summary}</span>
          </li>
        ))}
      </ul>
      {about && <PluginDetails name={about} onAdd={() => void add(about)} />}
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
