// Jobs: submit a preview or full Savu run (paths picked by browsing, from recent runs, or defaults that
// exist), watch jobs live, filter, search and page through them, clone or resubmit, cancel, read logs,
// open outputs (each, or all as a zip). The open job, the filters and the page are in the URL: a reload
// or "back" from the Viewer returns to them; what was typed in the form is kept for the tab (sessionStorage).
import { FormEvent, Fragment, useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, WhoAmI } from '../api';
import {
  ACTIVE, CodeAvailability, CodeJobRequest, Job, JobList, JobRequest, ModeAvailability, Resources, SavuJobRequest, cancelJob, clusterStatus, followLog, getJob, jobLog, jobOutputs,
  listJobs, queueSummary, submitJob, watchJobs,
} from '../jobs/client';
import { PathPicker } from '../jobs/PathPicker';
import { HDF5, downloadUrl, listFolder, splitRef, zipUrl } from '../files/client';
import { MessageLine, describe, useMessage } from '../messages';
import { href, navigate, withParams } from '../route';

const PAGE = 20;
const STATES = ['queued', 'running', 'finished', 'failed', 'cancelled', 'timeout', 'lost'];
const DRAFT = 'hebi.jobs.form';
const STATE_COLOURS: Record<string, string> = {
  queued: '#5a6877', running: '#1f6feb', finished: '#1a7f37', failed: '#b42318', cancelled: '#7a5c00',
  timeout: '#b54708', lost: '#6b21a8', submitting: '#5a6877', unknown: '#5a6877',
};

interface Form {
  kind: 'savu' | 'code';
  process_list: string; dataset: string; output: string; name: string; mode: 'preview' | 'full';
  preview: string; time_limit: string; cores: string; memory_mb: string; queue: string;
  project: string; entry: string; data: string; parameters: string;  // a code job's
}
const EMPTY: Form = { kind: 'savu', process_list: '', dataset: '', output: '', name: '', mode: 'preview', preview: '5',
                      time_limit: '', cores: '1', memory_mb: '', queue: '', project: '', entry: '', data: '',
                      parameters: '' };

function when(seconds: number | null): string {
  return seconds ? new Date(seconds * 1000).toLocaleString() : '';
}

function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function StateBadge({ job }: { job: Job }) {
  const label = job.state === 'timeout' ? 'killed at time limit' : job.state;
  return (
    <span className="job-state" data-state={job.state}
          style={{ color: '#fff', background: STATE_COLOURS[job.state] ?? '#5a6877', borderRadius: 4,
                   padding: '.1rem .45rem', fontSize: '.85rem' }}>
      {label}{job.cancel_requested && ACTIVE.includes(job.state) ? ' (cancelling)' : ''}
    </span>
  );
}

/** The form's values for running ``job`` again. */
function formOf(job: Job): Form {
  const preview = job.preview as unknown;
  const code = job.kind === 'code'
    ? { kind: 'code' as const, project: job.project ?? '', entry: job.entry ?? '', data: job.dataset ?? '',
        parameters: job.parameters ? JSON.stringify(job.parameters) : '' }
    : { kind: 'savu' as const, process_list: job.process_list ?? '', dataset: job.dataset ?? '' };
  return { ...EMPTY, ...code, output: job.output, mode: job.mode,
           name: job.name ? `${job.name} (again)`.slice(0, 100) : '',
           preview: job.mode === 'preview' && (typeof preview === 'number' || typeof preview === 'string') ? String(preview) : '5',
           time_limit: job.resources.time_limit ? String(job.resources.time_limit) : '',
           cores: String(job.resources.cores ?? 1), memory_mb: job.resources.memory_mb ? String(job.resources.memory_mb) : '',
           queue: job.queue && job.queue !== 'local' ? job.queue : '' };
}

function parametersOf(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('The parameters are not JSON: write them as {"name": value, ...}');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('The parameters must be {"name": value, ...}');
  return value as Record<string, unknown>;
}

function requestOf(form: Form): JobRequest {
  const resources: Resources = {};
  const common = { output: form.output.trim(), mode: form.mode, name: form.name.trim() || undefined, resources };
  let request: JobRequest;
  if (form.kind === 'code') {
    const code: CodeJobRequest = { kind: 'code', project: form.project.trim(), ...common };
    if (form.entry.trim()) code.entry = form.entry.trim();
    if (form.data.trim()) code.data = form.data.trim();
    if (form.parameters.trim()) code.parameters = parametersOf(form.parameters);
    request = code;
  } else {
    const savu: SavuJobRequest = { process_list: form.process_list.trim(), dataset: form.dataset.trim(), ...common };
    if (form.mode === 'preview' && form.preview) savu.preview = /^\d+$/.test(form.preview) ? Number(form.preview) : form.preview;
    request = savu;
  }
  if (form.time_limit) resources.time_limit = /^\d+$/.test(form.time_limit) ? Number(form.time_limit) : form.time_limit;
  if (form.cores) resources.cores = Number(form.cores);
  if (form.memory_mb) resources.memory_mb = Number(form.memory_mb);
  if (form.queue) resources.queue = form.queue;
  return request;
}

async function firstFile(root: string, accept: RegExp): Promise<string> {
  try {
    const listing = await listFolder(root, '');
    const found = listing.entries.find((e) => e.type === 'file' && accept.test(e.name));
    return found ? `${root}/${found.name}` : '';
  } catch {
    return '';
  }
}

function SubmitForm({ me, modes, code, recent, preset, onSubmitted }: {
  me: WhoAmI; modes: ModeAvailability[]; code: CodeAvailability | null; recent: Job[] | null; preset: Form | null;
  onSubmitted: (job: Job) => void;
}) {
  const [form, setForm] = useState<Form>(() => {
    try {
      return { ...EMPTY, ...(JSON.parse(sessionStorage.getItem(DRAFT) ?? 'null') as Partial<Form> | null) };
    } catch {
      return EMPTY;
    }
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const filled = useRef(false);
  // Fields the person has been in: the defaults below arrive late (they ask the server) and must never
  // change one of those, or what they were typing ends up after a default put there under them.
  const touched = useRef(new Set<string>());
  const formRef = useRef<HTMLFormElement>(null);
  const set = (key: keyof Form) => (value: string) => setForm((old) => ({ ...old, [key]: value }));
  const mode = modes.find((m) => m.mode === form.mode) as (ModeAvailability & { max_memory_mb?: number }) | undefined;

  useEffect(() => {
    sessionStorage.setItem(DRAFT, JSON.stringify(form));
  }, [form]);

  useEffect(() => {  // a job cloned, or a list sent here by the editor's "Run this list"
    if (!preset) return;
    setForm((old) => ({ ...old, ...Object.fromEntries(Object.entries(preset).filter(([, v]) => v !== '')) }));
    setError(null);
    formRef.current?.scrollIntoView({ block: 'nearest' });
  }, [preset]);

  useEffect(() => {  // defaults that exist: the last run's paths, else the first list and dataset found
    if (filled.current || recent === null) return;  // null: the jobs are not loaded yet
    filled.current = true;
    void (async () => {
      const last = recent[0];
      const defaults = {
        process_list: last?.process_list || await firstFile('processing', /\.nxs$/i),
        dataset: last?.dataset || await firstFile('data', HDF5),
        output: last?.output || 'output/runs',
      };
      const keep = (key: 'process_list' | 'dataset' | 'output', old: Form) =>
        old[key] || touched.current.has(key) ? old[key] : defaults[key];
      setForm((old) => ({ ...old, process_list: keep('process_list', old), dataset: keep('dataset', old),
                          output: keep('output', old) }));
    })();
  }, [recent]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      onSubmitted(await submitJob(requestOf(form)));
      setForm((old) => ({ ...old, name: '' }));
    } catch (e) {
      setError(describe(e, 'The job was not submitted'));
    } finally {
      setBusy(false);
    }
  }

  const uniq = (key: 'process_list' | 'dataset' | 'output' | 'project', kind?: Job['kind']) =>
    [...new Set((recent ?? []).filter((job) => !kind || job.kind === kind).map((job) => job[key])
      .filter((value): value is string => Boolean(value)))].slice(0, 10);
  const isCode = form.kind === 'code';
  const notebook = isCode && (/\.ipynb$/i.test(form.entry.trim()) || /\.ipynb$/i.test(form.project.trim()));
  return (
    <form ref={formRef} className="job-form" onSubmit={submit} aria-label="Submit a job"
          onFocus={(e) => { const { name } = e.target as EventTarget & { name?: string }; if (name) touched.current.add(name); }}>
      <div className="job-form-row job-kind" role="radiogroup" aria-label="What to run">
        <label><input type="radio" name="kind" value="savu" checked={!isCode} onChange={() => set('kind')('savu')} /> A Savu process list</label>
        <label title={code && !code.available ? code.reason : 'Your own project: a folder or a .zip with code.py, app.py or main.py (Python), or app.m (GNU Octave); or a notebook'}>
          <input type="radio" name="kind" value="code" checked={isCode} disabled={!code?.available && !isCode}
                 onChange={() => set('kind')('code')} /> Run code (your own Python, Octave or notebook)
        </label>
        {code && !code.available && <span className="job-code-refused">Not here: {code.reason}</span>}
      </div>
      {isCode ? <>
        <PathPicker me={me} label="Project (folder, .zip or notebook)" name="project" value={form.project} onChange={set('project')}
                    pick="file" accept={/\.(zip|ipynb)$/i} folders startRoot="processing" recent={uniq('project')} />
        <label className="path-picker">Entry point <input value={form.entry} onChange={(e) => set('entry')(e.target.value)} name="entry"
                                  placeholder="code.py, app.py or main.py; app.m (Octave); or a notebook (.ipynb)" spellCheck={false} /></label>
        {notebook && (
          <label className="path-picker">Parameters (JSON, injected after the notebook's "parameters" cell)
            <textarea value={form.parameters} onChange={(e) => set('parameters')(e.target.value)} name="parameters" rows={2}
                      placeholder='{"angle": 45, "sample": "A12"}' spellCheck={false} />
          </label>
        )}
        <PathPicker me={me} label="Data (optional, as input/)" name="data" value={form.data} onChange={set('data')} optional
                    pick="file" folders startRoot="data" recent={uniq('dataset', 'code')} />
      </> : <>
        <PathPicker me={me} label="Process list" name="process_list" value={form.process_list} onChange={set('process_list')}
                    pick="file" accept={/\.nxs$/i} startRoot="processing" recent={uniq('process_list')} />
        <PathPicker me={me} label="Dataset" name="dataset" value={form.dataset} onChange={set('dataset')}
                    pick="file" accept={/\.(nxs|h5|hdf5?|hdf|tiff?)$/i} folders startRoot="data" recent={uniq('dataset', 'savu')} />
      </>}
      <PathPicker me={me} label="Output folder" name="output" value={form.output} onChange={set('output')}
                  pick="folder" startRoot="output" recent={uniq('output')} />
      <div className="job-form-row">
        <label>Name <input value={form.name} onChange={(e) => set('name')(e.target.value)} name="name" placeholder="optional" /></label>
        <label>Mode{' '}
          <select value={form.mode} onChange={(e) => set('mode')(e.target.value)} name="mode">
            <option value="preview">{isCode ? 'preview (the quick queue)' : 'preview (a few central slices)'}</option>
            <option value="full">full</option>
          </select>
        </label>
        {form.mode === 'preview' && !isCode && (
          <label>Slices <input value={form.preview} onChange={(e) => set('preview')(e.target.value)} name="preview" size={8}
                               title="A number of central slices, or a Savu preview such as mid-2:mid+3" /></label>
        )}
        <label>Time limit <input value={form.time_limit} onChange={(e) => set('time_limit')(e.target.value)} name="time_limit" size={14}
                                 placeholder={mode ? `${mode.time_limit} s (max ${mode.max_time_limit})` : 'seconds or HH:MM:SS'} /></label>
        <label>Cores <input value={form.cores} onChange={(e) => set('cores')(e.target.value)} name="cores" type="number" min={1}
                            max={mode?.max_cores} style={{ width: '5rem' }} /></label>
        <label>Memory (MB) <input value={form.memory_mb} onChange={(e) => set('memory_mb')(e.target.value)} name="memory_mb"
                                  type="number" min={0} max={mode?.max_memory_mb || undefined} style={{ width: '7rem' }}
                                  placeholder={mode?.max_memory_mb ? `max ${mode.max_memory_mb}` : 'default'} /></label>
        {mode && mode.backend !== 'local' && (
          <label>Queue{' '}
            <select value={form.queue || mode.queue} onChange={(e) => set('queue')(e.target.value)} name="queue">
              {[mode.queue, ...mode.queues.map((q) => q.name)].filter((q, i, all) => q && all.indexOf(q) === i)
                .map((q) => <option key={q} value={q}>{q}</option>)}
            </select>
          </label>
        )}
        <button type="submit" className="primary" disabled={busy || (isCode && !code?.available)}>
          {busy ? 'Submitting…' : isCode ? 'Run code' : `Submit ${form.mode}`}</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

function JobDetails({ job }: { job: Job }) {
  const [chosen, setChosen] = useState<string | null>(null);  // a tab the user picked; null: the API's default
  const first = job.kind === 'code' ? 'stdout' : 'user';  // a code job has no Savu user.log
  const [shown, setShown] = useState(first);
  const [text, setText] = useState('');
  const [files, setFiles] = useState<{ path: string; size: number }[]>([]);

  useEffect(() => {
    setText('');
    if (ACTIVE.includes(job.state)) {
      setShown(chosen ?? first);
      return followLog(job.id, chosen ?? first, (piece) => setText((old) => (old + piece).slice(-200_000)), () => undefined);
    }
    jobLog(job.id, chosen ?? undefined).then((log) => {
      setShown(log.stream);
      setText(log.text || '(empty)');
    }, (e: Error) => setText(describe(e)));
    return undefined;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [job.id, chosen, ACTIVE.includes(job.state)]);

  useEffect(() => {
    jobOutputs(job.id).then((o) => setFiles(o.files), () => setFiles([]));
  }, [job.id, job.state]);

  const back = window.location.hash;
  // What a run wrote: a code job's output/ folder, a Savu job's whole run folder.
  const results = job.run_folder ? (job.kind === 'code' ? `${job.run_folder}/output` : job.run_folder) : null;
  return (
    <div className="job-details">
      <p>
        {job.kind === 'code'
          ? <>{job.entry} of {job.project}{job.dataset ? <> with {job.dataset}</> : ''}</>
          : <>{job.process_list} on {job.dataset}</>} → {job.run_folder ?? job.output}
        {job.end && <> · exit code {job.end.exit_code ?? '–'}{job.end.signal ? ` (${job.end.signal})` : ''} · ran {duration(job.end.wall_time)}</>}
        {job.message && <> · {job.message}</>}
        {job.language === 'notebook' && job.end && (
          <> · <a href={`/api/jobs/${encodeURIComponent(job.id)}/notebook`} target="_blank" rel="noopener noreferrer">
            Open the notebook</a></>
        )}
      </p>
      <div role="tablist" aria-label="Log">
        {(job.kind === 'code' ? ['stdout', 'stderr'] : ['user', 'stdout', 'stderr']).map((name) => (
          <button key={name} type="button" role="tab" aria-selected={shown === name} onClick={() => setChosen(name)}
                  style={{ fontWeight: shown === name ? 700 : 400, marginRight: '.25rem' }}>
            {name === 'user' ? 'user.log' : name}
          </button>
        ))}
      </div>
      <pre className="job-log">{text}</pre>
      {files.length > 0 && <>
        <ul className="job-outputs">
          {files.slice(0, 50).map((file) => {
            const [root, path] = splitRef(file.path);
            const slash = path.lastIndexOf('/');
            const name = path.slice(slash + 1);
            return (
              <li key={file.path}>
                {HDF5.test(file.path)
                  ? <a href={href('viewer', { file: file.path, back })}>{file.path}</a>
                  : <a href={href('files', { root, path: path.slice(0, Math.max(0, slash)), open: name })}>{file.path}</a>}
                {' '}<a href={downloadUrl(root, path)} download={name} aria-label={`Download ${name}`}>Download</a>
              </li>
            );
          })}
        </ul>
        {results && (
          <a className="button" href={zipUrl(...splitRef(results))} download>
            Download all as zip</a>
        )}
      </>}
    </div>
  );
}

export default function JobsArea({ me, params }: { me: WhoAmI; params: URLSearchParams }) {
  const [list, setList] = useState<JobList | null>(null);
  const [extra, setExtra] = useState<Job | null>(null);  // the open job, when it is not on this page
  const [modes, setModes] = useState<ModeAvailability[]>([]);
  const [code, setCode] = useState<CodeAvailability | null>(null);
  const [preset, setPreset] = useState<Form | null>(null);
  const [version, setVersion] = useState(0);
  const { message, info, fail, clear } = useMessage();
  const open = params.get('job');
  const stateFilter = params.get('state') ?? '';
  const modeFilter = params.get('mode') ?? '';
  const search = params.get('q') ?? '';
  const page = Math.max(0, Number(params.get('page') ?? '0') || 0);
  const per = Math.min(100, Math.max(1, Number(params.get('per') ?? PAGE) || PAGE));  // jobs a page
  const go = (changes: Record<string, string>, replace = false) => navigate('jobs', withParams(params, changes), { replace });
  const reload = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    let current = true;
    const timer = setTimeout(() => {  // typing in the search box asks once it pauses
      listJobs({ state: stateFilter || undefined, mode: modeFilter || undefined, q: search || undefined,
                 limit: per, offset: page * per })
        .then((l) => current && setList(l), (e) => current && fail(e));
    }, search ? 250 : 0);
    return () => { current = false; clearTimeout(timer); };
  }, [stateFilter, modeFilter, search, page, per, version, fail]);

  useEffect(() => {
    clusterStatus().then((c) => { setModes(c.modes); setCode(c.code); }, () => undefined);
    let pending: ReturnType<typeof setTimeout> | null = null;
    const stop = watchJobs((job) => {
      setList((old) => old && old.jobs.some((j) => j.id === job.id)
        ? { ...old, jobs: old.jobs.map((j) => (j.id === job.id ? job : j)) } : old);
      setExtra((old) => (old?.id === job.id ? job : old));
      if (pending === null) pending = setTimeout(() => { pending = null; reload(); }, 1000);  // new jobs, moved pages
    });
    return () => { stop(); if (pending) clearTimeout(pending); };
  }, [reload]);

  useEffect(() => {  // "Run this list" (the editor) and links that name the paths
    const chosen = { process_list: params.get('list') ?? '', dataset: params.get('dataset') ?? '', output: params.get('output') ?? '' };
    if (chosen.process_list || chosen.dataset || chosen.output) setPreset({ ...EMPTY, ...chosen, mode: 'preview' });
  }, [params]);

  const jobs = list?.jobs ?? [];
  useEffect(() => {
    if (!list) return;  // known once the page is: the open job may be on it
    if (!open || jobs.some((j) => j.id === open)) {
      setExtra(null);
      return;
    }
    getJob(open).then(setExtra, (e) => {
      setExtra(null);
      fail(e instanceof ApiError && e.status === 404 ? new Error('That job no longer exists.') : e);
    });
  }, [open, list]);  // eslint-disable-line react-hooks/exhaustive-deps

  const shown = extra && !jobs.some((j) => j.id === extra.id) ? [extra, ...jobs] : jobs;
  const pages = Math.max(1, Math.ceil((list?.total ?? 0) / per));
  const filtered = Boolean(stateFilter || modeFilter || search);

  async function cancel(job: Job) {
    try {
      await cancelJob(job.id);
      info(`Cancelling ${job.name}.`);
      reload();
    } catch (e) {
      fail(e, `${job.name} was not cancelled`);
    }
  }

  async function resubmit(job: Job) {
    try {
      const again = await submitJob(requestOf(formOf(job)));
      info(`Resubmitted as ${again.name}.`);
      go({ job: again.id, page: '', state: '', mode: '', q: '' });
      reload();
    } catch (e) {
      fail(e, `${job.name} was not resubmitted`);
    }
  }

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <p className="cluster">
        {modes.map((m) => (
          <span key={m.mode} style={{ marginRight: '1.25rem' }}>
            {m.mode}: {m.available ? m.queues.map(queueSummary).join(', ')
                                   : `unavailable${m.reason ? ` (${m.reason})` : ''}`}
          </span>
        ))}
      </p>
      {list && !list.cluster.available && (
        <p className="error" role="alert">
          Cluster unavailable: {Object.values(list.cluster.unavailable).join('; ')}. States shown are the last known.
        </p>
      )}
      <SubmitForm me={me} modes={modes} code={code} recent={list ? list.jobs : null} preset={preset}
                  onSubmitted={(job) => { info(`Submitted ${job.name}.`); go({ job: job.id, page: '', state: '', mode: '', q: '' }); reload(); }} />
      <MessageLine message={message} onClose={clear} />
      <div className="job-filters" role="search">
        <input type="search" aria-label="Search jobs" placeholder="Search name, list, dataset or project" value={search}
               onChange={(e) => go({ q: e.target.value, page: '' }, true)} />
        <select aria-label="State" value={stateFilter} onChange={(e) => go({ state: e.target.value, page: '' })}>
          <option value="">every state</option>
          {STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          <option value="queued,running,submitting,unknown">active</option>
        </select>
        <select aria-label="Mode" value={modeFilter} onChange={(e) => go({ mode: e.target.value, page: '' })}>
          <option value="">every mode</option>
          <option value="preview">preview</option>
          <option value="full">full</option>
        </select>
        {list && <span className="job-count">{list.total} job{list.total === 1 ? '' : 's'}{filtered ? ' match' : ''}</span>}
      </div>
      {list && shown.length === 0 ? <p className="empty">{filtered ? 'No job matches.' : 'No jobs yet.'}</p> : (
        <table className="jobs">
          <thead><tr><th>Name</th><th>Mode</th><th>State</th><th>Progress</th><th>Submitted</th><th></th></tr></thead>
          <tbody>
            {shown.map((job) => (
              <Fragment key={job.id}>
                <tr data-job={job.id} className={open === job.id ? 'open' : ''}>
                  <td><button type="button" className="linklike" aria-expanded={open === job.id}
                              onClick={() => go({ job: open === job.id ? '' : job.id })}>{job.name}</button></td>
                  <td>{job.kind === 'code' ? `code, ${job.mode}` : job.mode}</td>
                  <td><StateBadge job={job} />
                    {job.message && job.state !== 'finished' && job.message !== job.state &&
                     <span className="job-reason">{job.message}</span>}</td>
                  <td>{job.progress !== null ? <><progress max={100} value={job.progress} /> {job.progress}%</> : ''}</td>
                  <td>{when(job.submitted_at)}</td>
                  <td className="row-actions">
                    {ACTIVE.includes(job.state) && !job.cancel_requested &&
                      <button type="button" onClick={() => void cancel(job)}>Cancel</button>}
                    <button type="button" onClick={() => { setPreset(formOf(job)); clear(); }}
                            title="Fill the form with this job's settings, to change them before submitting">Clone</button>
                    {!ACTIVE.includes(job.state) &&
                      <button type="button" onClick={() => void resubmit(job)} title="Submit the same job again">Resubmit</button>}
                  </td>
                </tr>
                {open === job.id && (
                  <tr className="job-details-row"><td colSpan={6}><JobDetails job={job} /></td></tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {pages > 1 && (
        <nav className="pages" aria-label="Pages">
          <button type="button" disabled={page === 0} onClick={() => go({ page: page > 1 ? String(page - 1) : '' })}>Newer</button>
          <span>Page {page + 1} of {pages}</span>
          <button type="button" disabled={page + 1 >= pages} onClick={() => go({ page: String(page + 1) })}>Older</button>
        </nav>
      )}
    </section>
  );
}
