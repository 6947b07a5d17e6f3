// Jobs: submit a preview or full Savu run, watch every job's state live, cancel, read logs, open outputs.
import { FormEvent, Fragment, useCallback, useEffect, useState } from 'react';
import {
  ACTIVE, Job, JobRequest, ModeAvailability, cancelJob, clusterStatus, followLog, jobLog, jobOutputs, listJobs,
  submitJob, watchJobs,
} from '../jobs/client';
import { href } from '../route';

const STATE_COLOURS: Record<string, string> = {
  queued: '#5a6877', running: '#1f6feb', finished: '#1a7f37', failed: '#b42318', cancelled: '#7a5c00',
  timeout: '#b54708', lost: '#6b21a8', submitting: '#5a6877', unknown: '#5a6877',
};

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

function SubmitForm({ modes, onSubmitted }: { modes: ModeAvailability[]; onSubmitted: (job: Job) => void }) {
  const [form, setForm] = useState({ process_list: 'processing/', dataset: 'data/', output: 'output/', name: '',
                                     mode: 'preview' as 'preview' | 'full', preview: '5', time_limit: '', cores: '1' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof form) => (event: { target: { value: string } }) =>
    setForm({ ...form, [key]: event.target.value });
  const mode = modes.find((m) => m.mode === form.mode);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    const request: JobRequest = { process_list: form.process_list, dataset: form.dataset, output: form.output,
                                  mode: form.mode, name: form.name || undefined, resources: {} };
    if (form.mode === 'preview' && form.preview) {
      request.preview = /^\d+$/.test(form.preview) ? Number(form.preview) : form.preview;
    }
    if (form.time_limit) request.resources!.time_limit = /^\d+$/.test(form.time_limit) ? Number(form.time_limit) : form.time_limit;
    if (form.cores) request.resources!.cores = Number(form.cores);
    try {
      onSubmitted(await submitJob(request));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="job-form" onSubmit={submit} aria-label="Submit a job"
          style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(14rem, 1fr))', gap: '.5rem',
                   marginBottom: '1rem' }}>
      <label>Process list <input value={form.process_list} onChange={set('process_list')} name="process_list" required /></label>
      <label>Dataset <input value={form.dataset} onChange={set('dataset')} name="dataset" required /></label>
      <label>Output folder <input value={form.output} onChange={set('output')} name="output" required /></label>
      <label>Name <input value={form.name} onChange={set('name')} name="name" placeholder="optional" /></label>
      <label>Mode{' '}
        <select value={form.mode} onChange={set('mode')} name="mode">
          <option value="preview">preview (a few central slices)</option>
          <option value="full">full</option>
        </select>
      </label>
      {form.mode === 'preview' && (
        <label>Slices <input value={form.preview} onChange={set('preview')} name="preview"
                             title="A number of central slices, or a Savu preview such as mid-2:mid+3" /></label>
      )}
      <label>Time limit <input value={form.time_limit} onChange={set('time_limit')} name="time_limit"
                               placeholder={mode ? `${mode.time_limit} s (max ${mode.max_time_limit})` : 'seconds or HH:MM:SS'} /></label>
      <label>Cores <input value={form.cores} onChange={set('cores')} name="cores" type="number" min={1}
                          max={mode?.max_cores} /></label>
      <div><button type="submit" disabled={busy}>{busy ? 'Submitting…' : `Submit ${form.mode}`}</button></div>
      {error && <p className="error" role="alert" style={{ gridColumn: '1 / -1' }}>{error}</p>}
    </form>
  );
}

function JobDetails({ job }: { job: Job }) {
  const [chosen, setChosen] = useState<string | null>(null);  // a tab the user picked; null: the API's default
  const [shown, setShown] = useState('user');
  const [text, setText] = useState('');
  const [files, setFiles] = useState<{ path: string; size: number }[]>([]);

  useEffect(() => {
    setText('');
    if (ACTIVE.includes(job.state)) {
      setShown(chosen ?? 'user');
      return followLog(job.id, chosen ?? 'user', (piece) => setText((old) => (old + piece).slice(-200_000)), () => undefined);
    }
    jobLog(job.id, chosen ?? undefined).then((log) => {
      setShown(log.stream);
      setText(log.text || '(empty)');
    }, (e: Error) => setText(e.message));
    return undefined;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [job.id, chosen, ACTIVE.includes(job.state)]);

  useEffect(() => {
    jobOutputs(job.id).then((o) => setFiles(o.files), () => setFiles([]));
  }, [job.id, job.state]);

  return (
    <div className="job-details" style={{ padding: '.5rem 0' }}>
      <p>
        {job.process_list} on {job.dataset} → {job.run_folder ?? job.output}
        {job.end && <> · exit code {job.end.exit_code ?? '–'}{job.end.signal ? ` (${job.end.signal})` : ''} · ran {duration(job.end.wall_time)}</>}
        {job.message && <> · {job.message}</>}
      </p>
      <div role="tablist" aria-label="Log">
        {['user', 'stdout', 'stderr'].map((name) => (
          <button key={name} type="button" role="tab" aria-selected={shown === name} onClick={() => setChosen(name)}
                  style={{ fontWeight: shown === name ? 700 : 400, marginRight: '.25rem' }}>
            {name === 'user' ? 'user.log' : name}
          </button>
        ))}
      </div>
      <pre className="job-log" style={{ maxHeight: '18rem', overflow: 'auto', background: '#0f172a', color: '#e2e8f0',
                                         padding: '.5rem', borderRadius: 6, fontSize: '.8rem' }}>{text}</pre>
      {files.length > 0 && (
        <ul className="job-outputs">
          {files.slice(0, 50).map((file) => (
            <li key={file.path}>
              {/\.(nxs|h5|hdf5?)$/i.test(file.path)
                ? <a href={href('viewer', { file: file.path })}>{file.path}</a>
                : <a href={href('files', { root: file.path.split('/')[0],
                                            path: file.path.split('/').slice(1, -1).join('/') })}>{file.path}</a>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export default function JobsArea() {
  const [jobs, setJobs] = useState<Job[]>([]);
  const [modes, setModes] = useState<ModeAvailability[]>([]);
  const [clusterNote, setClusterNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const merge = useCallback((job: Job) => {
    setJobs((old) => {
      const others = old.filter((j) => j.id !== job.id);
      return [job, ...others].sort((a, b) => b.submitted_at - a.submitted_at);
    });
  }, []);

  useEffect(() => {
    listJobs().then((list) => {
      setJobs(list.jobs);
      setClusterNote(list.cluster.available ? null : Object.values(list.cluster.unavailable).join('; '));
    }, (e: Error) => setError(e.message));
    clusterStatus().then((c) => setModes(c.modes), () => undefined);
    return watchJobs(merge);
  }, [merge]);

  async function cancel(job: Job) {
    try {
      merge(await cancelJob(job.id));
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <p className="cluster">
        {modes.map((m) => (
          <span key={m.mode} style={{ marginRight: '1.25rem' }}>
            {m.mode}: {m.available ? `${m.queues.map((q) => `${q.name} ${q.free}/${q.total} free`).join(', ')}`
                                   : `unavailable${m.reason ? ` (${m.reason})` : ''}`}
          </span>
        ))}
      </p>
      {clusterNote && <p className="error" role="alert">Cluster unavailable: {clusterNote}. States shown are the last known.</p>}
      <SubmitForm modes={modes} onSubmitted={(job) => { merge(job); setOpen(job.id); }} />
      {error && <p className="error" role="alert">{error}</p>}
      {jobs.length === 0 ? <p className="empty">No jobs yet.</p> : (
        <table className="jobs">
          <thead><tr><th>Name</th><th>Mode</th><th>State</th><th>Progress</th><th>Submitted</th><th></th></tr></thead>
          <tbody>
            {jobs.map((job) => (
              <Fragment key={job.id}>
                <tr data-job={job.id}>
                  <td><button type="button" className="linklike" onClick={() => setOpen(open === job.id ? null : job.id)}
                              aria-expanded={open === job.id}>{job.name}</button></td>
                  <td>{job.mode}</td>
                  <td><StateBadge job={job} />
                    {job.message && job.state !== 'finished' && job.message !== job.state &&
                     <span className="job-reason" style={{ marginLeft: '.5rem', fontSize: '.85rem' }}>{job.message}</span>}</td>
                  <td>{job.progress !== null ? <><progress max={100} value={job.progress} /> {job.progress}%</> : ''}</td>
                  <td>{when(job.submitted_at)}</td>
                  <td>{ACTIVE.includes(job.state) && !job.cancel_requested &&
                       <button type="button" onClick={() => void cancel(job)}>Cancel</button>}</td>
                </tr>
                {open === job.id && (
                  <tr><td colSpan={6}><JobDetails job={job} /></td></tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
